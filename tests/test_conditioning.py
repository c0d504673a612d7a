"""Conditional generation (docs/conditioning.md): the ``Condition`` / ``Conditioned`` wrapper and CFG on an
analytic toy, every sampler against the restore-after-every-step rule (and ``ode`` / ``sde`` against a
plain loop written from ELF's equations), the commit sampler's held positions, the training masks, the
prompt templates, the masked flow-matching loss, and train.py / sample.py end to end."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import sample as sample_entry
import train as train_entry
from conftest import FIXTURE_CORPUS, compose_config, tiny_train_overrides
from test_cli import run_cli
from textflow.checkpoint import load_run
from textflow.conditioning import Condition, ConditionMasks, Conditioned, parse_template, read_prompts
from textflow.conditioning.prompts import prefix_prompts
from textflow.data.heldout import heldout_blocks
from textflow.errors import ConfigError, DataError
from textflow.noise import per_sample_generators, randn
from textflow.objectives import flow_matching_loss
from textflow.paths import LinearPath, expand_time
from textflow.samplers import Sampler

V, D, B, L, K = 6, 2, 3, 8, 4
ANGLES = torch.arange(V) * 2 * math.pi / V
TABLE = torch.stack([torch.cos(ANGLES), torch.sin(ANGLES)], -1)  # V distinct token latents


class Toy:
    """A deterministic denoiser that mixes positions within a row (so given positions steer free ones):
    ``x_hat = tanh(0.8 z + 0.6 mean_L(z) + 0.3 t + 0.2 mean_L(t) - 0.1)``. Records every call's inputs."""

    def __init__(self, path=None):
        self.path, self.nfe, self.calls = path or LinearPath(), 0, []
        self.table = TABLE

    def __call__(self, z, t):
        self.nfe += 1
        self.calls.append((z.clone(), t.clone()))
        tt = expand_time(t, z)
        mixed = 0.6 * z.mean(1, keepdim=True) + 0.2 * tt.mean(1, keepdim=True)
        return torch.tanh(0.8 * z + 0.3 * tt + mixed - 0.1)

    def readout(self, x):
        return -((x.unsqueeze(-2) - self.table) ** 2).sum(-1)  # (B, L, V)

    def embed(self, ids):
        return self.table[ids]


class ToySC(Toy):
    """The toy with a self-conditioning input ``x_prev``; records it too."""

    self_conditioned = True

    def __init__(self):
        super().__init__()
        self.prevs = []

    def __call__(self, z, t, x_prev=None):
        self.prevs.append(None if x_prev is None else x_prev.clone())
        out = super().__call__(z, t)
        return out if x_prev is None else out + 0.25 * x_prev


def make_condition(batch: int = B, length: int = L, seed: int = 0) -> Condition:
    """Row 0: a prefix of 3; row 1: two spans (infilling); row 2: one given position; others: prefix of 2."""
    ids = torch.randint(0, V, (batch, length), generator=torch.Generator().manual_seed(seed))
    mask = torch.zeros(batch, length, dtype=torch.bool)
    mask[0, :3] = True
    if batch > 1:
        mask[1, 2:4] = True
        mask[1, 6] = True
    if batch > 2:
        mask[2, 0] = True
    mask[3:, :2] = True
    return Condition(mask=mask, ids=ids, latents=TABLE[ids])


def x_init(batch: int = B, length: int = L, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, length, D, generator=torch.Generator().manual_seed(seed))


def restore(mask, c, z):
    return torch.where(mask.unsqueeze(-1), c, z)


def gens(indices=range(B)):
    return per_sample_generators(11, list(indices))


SAMPLERS = [("ode", {}), ("heun", {}), ("sde", {"gamma": 1.5}), ("commit", {"rule": "schedule"}),
            ("commit", {"rule": "confidence", "threshold": 0.5}),
            ("commit", {"rule": "schedule", "gamma": 1.0}),
            ("elf", {"gamma": 1.0}), ("adaptive", {"gamma": 1.5})]
IDS = [f"{name}-{'-'.join(f'{k}{v}' for k, v in knobs.items())}" for name, knobs in SAMPLERS]


# ------------------------------------------------------------------------------------------ Condition
def test_condition_helpers_and_shape_checks():
    cond = make_condition()
    z = torch.full((B, L, D), 7.0)
    m = cond.mask.unsqueeze(-1)
    assert torch.equal(cond.restore(z), torch.where(m, cond.latents, z))
    assert torch.equal(cond.blank(z), torch.where(m, torch.zeros_like(z), z))
    t = torch.tensor([0.1, 0.5, 0.9])
    times = cond.times(t)
    assert times.shape == (B, L) and torch.all(times[cond.mask] == 1)
    assert torch.equal(times[~cond.mask], t.unsqueeze(1).expand(B, L)[~cond.mask])
    per_token = cond.times(torch.full((B, L), 0.3))
    assert torch.all(per_token[~cond.mask] == 0.3) and torch.all(per_token[cond.mask] == 1)
    tokens = torch.full((B, L), V + 1)
    assert torch.equal(cond.restore_tokens(tokens), torch.where(cond.mask, cond.ids, tokens))
    assert torch.equal(cond.free, ~cond.mask)
    with pytest.raises(ValueError, match="bool"):
        Condition(mask=cond.mask.long(), ids=cond.ids, latents=cond.latents)
    with pytest.raises(ValueError, match="disagree"):
        Condition(mask=cond.mask, ids=cond.ids[:, :-1], latents=cond.latents)


# ---------------------------------------------------------------------------------- every sampler, toy
def _run(name, knobs, *, cfg_scale=1.0, den=None, cond=None, z0=None, generator=None):
    den = den or Toy()
    cond = cond or make_condition()
    sampler = Sampler(name=name, steps=K, cfg_scale=cfg_scale, **knobs)
    out = sampler(den, z0 if z0 is not None else x_init(), generator=generator or gens(), condition=cond)
    return out, den, cond


@pytest.mark.parametrize("name,knobs", SAMPLERS, ids=IDS)
@pytest.mark.parametrize("cfg_scale", [1.0, 2.0])
def test_given_positions_are_kept_exactly_in_latents_and_tokens(name, knobs, cfg_scale):
    out, den, cond = _run(name, knobs, cfg_scale=cfg_scale)
    m = cond.mask
    assert torch.equal(out.latents[m], cond.latents[m])
    assert torch.isfinite(out.latents).all()
    assert not torch.equal(out.latents[~m], x_init()[~m]), "free positions must be generated"
    if name == "commit":
        assert out.tokens is not None and torch.equal(out.tokens[m], cond.ids[m])
    else:
        assert out.tokens is None
        assert torch.equal(den.readout(out.latents).argmax(-1)[m], cond.ids[m])


@pytest.mark.parametrize("name,knobs", SAMPLERS, ids=IDS)
@pytest.mark.parametrize("cfg_scale", [1.0, 2.0])
def test_every_network_call_sees_given_positions_clean_at_time_one(name, knobs, cfg_scale):
    out, den, cond = _run(name, knobs, cfg_scale=cfg_scale)
    m, c = cond.mask, cond.latents
    assert len(den.calls) == out.nfe > 0
    clean = blank = 0
    for z, t in den.calls:
        assert t.shape == (B, L), "the network must get per-token times"
        assert torch.all(t[m] == 1), "given positions must be at per-token time 1"
        if torch.equal(z[m], c[m]):
            clean += 1
        else:  # only the unconditional CFG branch may see anything else: zeros
            assert cfg_scale != 1.0, "given positions must be clean"
            assert torch.equal(z[m], torch.zeros_like(z[m]))
            blank += 1
    if cfg_scale == 1.0:
        assert clean == len(den.calls)
    else:
        assert clean == blank == len(den.calls) // 2


def test_ode_free_positions_get_the_step_time():
    out, den, cond = _run("ode", {})
    grid = torch.linspace(0, 1, K + 1)
    assert len(den.calls) == K
    for i, (_, t) in enumerate(den.calls):
        assert torch.allclose(t[~cond.mask], grid[i].expand(int((~cond.mask).sum())))


# ------------------------------------------------------------------- plain loops from ELF's equations
def guided_x_hat(den, z, t, mask, c, w):
    """ELF's conditional call: given positions clean (conditional) or zero (unconditional) at time 1, CFG
    ``x_u + w (x_c - x_u)``, then ``x_hat <- c`` on the given positions."""
    tt = torch.where(mask, torch.ones_like(mask, dtype=t.dtype), t.unsqueeze(-1).expand(mask.shape))
    z_c, z_u = restore(mask, c, z), torch.where(mask.unsqueeze(-1), torch.zeros_like(z), z)
    if w == 0:
        x_hat = den(z_u, tt)
    elif w == 1:
        x_hat = den(z_c, tt)
    else:
        x_c = den(z_c, tt)
        x_u = den(z_u, tt)
        x_hat = x_u + w * (x_c - x_u)
    return restore(mask, c, x_hat)


def reference_ode(den, z0, cond, *, steps, w=1.0):
    mask, c, t_eps = cond.mask, cond.latents, den.path.t_eps
    z = restore(mask, c, z0)
    grid = torch.linspace(0, 1, steps + 1)
    for i in range(steps):
        t, t_next = torch.full((z.shape[0],), float(grid[i])), torch.full((z.shape[0],), float(grid[i + 1]))
        x_hat = guided_x_hat(den, z, t, mask, c, w)
        if i == steps - 1:
            z = x_hat
        else:
            z = z + (t_next - t).view(-1, 1, 1) * (x_hat - z) / (1 - t).clamp_min(t_eps).view(-1, 1, 1)
        z = restore(mask, c, z)
    return z


def reference_sde(den, z0, cond, *, steps, gamma, generator, w=1.0):
    mask, c, t_eps, sigma = cond.mask, cond.latents, den.path.t_eps, den.path.sigma
    z = restore(mask, c, z0)
    grid = torch.linspace(0, 1, steps + 1)
    for i in range(steps):
        t, t_next = torch.full((z.shape[0],), float(grid[i])), torch.full((z.shape[0],), float(grid[i + 1]))
        last = i == steps - 1
        alpha = 1.0 if last else max(1.0 - gamma * float(t_next[0] - t[0]), 0.0)
        if alpha < 1.0:
            eps = randn(z.shape, generator=generator)
            z, t = alpha * z + (1 - alpha) * sigma * eps, alpha * t
            z = restore(mask, c, z)
        x_hat = guided_x_hat(den, z, t, mask, c, w)
        if last:
            z = x_hat
        else:
            z = z + (t_next - t).view(-1, 1, 1) * (x_hat - z) / (1 - t).clamp_min(t_eps).view(-1, 1, 1)
        z = restore(mask, c, z)
    return z


@pytest.mark.parametrize("w", [1.0, 2.0, 0.0, 0.5])
def test_ode_matches_the_restoring_loop_and_counts_cfg_calls(w):
    cond, z0 = make_condition(), x_init()
    want = reference_ode(Toy(), z0, cond, steps=K, w=w)
    out, den, _ = _run("ode", {}, cfg_scale=w, cond=cond, z0=z0)
    free = cond.free
    torch.testing.assert_close(out.latents[free], want[free], rtol=1e-6, atol=1e-6)
    assert torch.equal(out.latents[cond.mask], cond.latents[cond.mask])
    assert out.nfe == den.nfe == (2 * K if w not in (0.0, 1.0) else K)


def test_cfg_scale_zero_is_the_unconditional_branch_and_differs_from_the_conditional_one():
    cond, z0 = make_condition(), x_init()
    zero, _, _ = _run("ode", {}, cfg_scale=0.0, cond=cond, z0=z0)
    one, _, _ = _run("ode", {}, cfg_scale=1.0, cond=cond, z0=z0)
    # the unconditional branch as its own loop: the network never sees the given latents
    blanked = Condition(mask=cond.mask, ids=cond.ids, latents=torch.zeros_like(cond.latents))
    want = reference_ode(Toy(), z0, blanked, steps=K, w=1.0)
    free = cond.free
    torch.testing.assert_close(zero.latents[free], want[free], rtol=1e-6, atol=1e-6)
    assert not torch.allclose(zero.latents[free], one.latents[free], atol=1e-4), "the toy must feel c"


@pytest.mark.parametrize("w", [1.0, 3.0])
@pytest.mark.parametrize("gamma", [1.5, 0.5])
def test_sde_matches_the_restoring_loop_with_the_same_noise(gamma, w):
    cond, z0 = make_condition(), x_init()
    want = reference_sde(Toy(), z0, cond, steps=K, gamma=gamma, generator=gens(), w=w)
    out, den, _ = _run("sde", {"gamma": gamma}, cfg_scale=w, cond=cond, z0=z0, generator=gens())
    free = cond.free
    torch.testing.assert_close(out.latents[free], want[free], rtol=1e-6, atol=1e-6)
    assert out.nfe == (2 * K if w != 1.0 else K)


# --------------------------------------------------------------------------------- the wrapper itself
@pytest.mark.parametrize("w", [2.5, 0.5, 1.0, 0.0])
def test_conditioned_is_the_cfg_linear_combination(w):
    cond = make_condition()
    m, c = cond.mask, cond.latents
    z = x_init(seed=5)
    t = torch.tensor([0.2, 0.55, 0.8])
    tt = torch.where(m, torch.ones(B, L), t.unsqueeze(1).expand(B, L))
    ref = Toy()
    x_c = ref(torch.where(m.unsqueeze(-1), c, z), tt)
    x_u = ref(torch.where(m.unsqueeze(-1), torch.zeros_like(z), z), tt)
    den = Toy()
    wrapped = Conditioned(den, cond, cfg_scale=w)
    x_hat = wrapped(z, t)
    want = x_u + w * (x_c - x_u)
    torch.testing.assert_close(x_hat[~m], want[~m], rtol=1e-6, atol=1e-6)
    assert torch.equal(x_hat[m], c[m])
    assert den.nfe == wrapped.nfe == wrapped.calls_per_step == (1 if w in (0.0, 1.0) else 2)
    assert wrapped.path is den.path and wrapped.readout == den.readout  # attributes pass through
    with pytest.raises(ValueError, match="shape"):
        wrapped(z[:, :-1], t)


def test_conditioned_restores_the_self_conditioning_input_per_branch():
    cond = make_condition()
    m, c = cond.mask, cond.latents
    den = ToySC()
    out = Sampler(name="ode", steps=K, cfg_scale=2.0)(den, x_init(), condition=cond)
    assert out.nfe == 2 * K and len(den.prevs) == 2 * K
    for k, ((z, _), prev) in enumerate(zip(den.calls, den.prevs)):
        assert prev is not None
        conditional = torch.equal(z[m], c[m])
        assert torch.equal(prev[m], c[m] if conditional else torch.zeros_like(c[m])), k
    assert torch.equal(out.latents[m], c[m])


# ------------------------------------------------------------------------------- batch invariance, commit
def test_sde_with_a_condition_is_batch_invariant():
    cond = make_condition(batch=2)
    sampler = Sampler(name="sde", steps=K, gamma=1.5, cfg_scale=2.0)
    g = gens([4, 9])
    z0 = randn((2, L, D), generator=g)
    both = sampler(Toy(), z0, generator=g, condition=cond).latents
    for row, index in enumerate([4, 9]):
        g1 = gens([index])
        z1 = randn((1, L, D), generator=g1)
        sl = slice(row, row + 1)
        one = Condition(mask=cond.mask[sl], ids=cond.ids[sl], latents=cond.latents[sl])
        alone = sampler(Toy(), z1, generator=g1, condition=one).latents
        torch.testing.assert_close(both[row:row + 1], alone, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("gamma", [0.0, 1.0])
def test_commit_schedule_commits_every_free_position_and_never_the_given_ones(gamma):
    cond = make_condition(batch=4)
    records = []
    sampler = Sampler(name="commit", steps=K, rule="schedule", gamma=gamma)
    out = sampler(Toy(), x_init(batch=4), generator=gens(range(4)), condition=cond, callback=records.append)
    m = cond.mask
    assert torch.all(out.committed_step[m] == -1), "given positions are not the sampler's commits"
    assert torch.all(out.committed_step[~m] >= 0), "schedule commits every free position by the last step"
    assert torch.all(out.committed_step[~m] < K)
    assert torch.equal(out.tokens[m], cond.ids[m])
    pinned, free = m.sum(1), (~m).sum(1)
    for i, rec in enumerate(records):  # the quota counts free positions only
        committed = rec.extras["committed"]
        assert torch.all(committed[m]), "given positions are held from the start"
        want = torch.tensor([math.ceil(int(f) * (i + 1) / K) for f in free])
        assert torch.equal(committed.sum(1) - pinned, want), (i, committed.sum(1) - pinned, want)
    # committed free tokens are held at their clean latents
    assert torch.equal(out.latents[~m], TABLE[out.tokens][~m])


def test_commit_confidence_leaves_given_positions_uncounted():
    cond = make_condition()
    out, _, _ = _run("commit", {"rule": "confidence", "threshold": 0.0}, cond=cond)
    assert torch.all(out.committed_step[cond.mask] == -1)
    assert torch.all(out.committed_step[~cond.mask] == 0), "threshold 0 commits every free position at step 0"
    assert torch.equal(out.tokens[cond.mask], cond.ids[cond.mask])


# ------------------------------------------------------------------------------------------- refusals
def test_cfg_scale_needs_a_condition_and_must_be_non_negative():
    sampler = Sampler(name="ode", steps=K, cfg_scale=2.0)
    with pytest.raises(ConfigError, match="cfg_scale"):
        sampler(Toy(), x_init())
    Sampler(name="ode", steps=K, cfg_scale=1.0)(Toy(), x_init())  # the default needs none
    for bad in (-1.0, float("nan")):
        with pytest.raises(ConfigError, match="sampler.cfg_scale"):
            Sampler(name="ode", steps=K, cfg_scale=bad)
    with pytest.raises(ConfigError, match="sampler.cfg_scale"):
        Conditioned(Toy(), make_condition(), cfg_scale=-0.5)
    guided = Sampler(name="sde", steps=K, gamma=1.0, cfg_scale=2.0)
    assert guided.describe()["cfg_scale"] == 2.0 and "cfg_scale" in guided.label
    assert guided.without_cfg().cfg_scale == 1.0 and "cfg_scale" not in Sampler(name="ode").describe()


# --------------------------------------------------------------------------------------- training masks
def _is_prefix(row: torch.Tensor) -> bool:
    n = int(row.sum())
    return n > 0 and bool(row[:n].all())


@pytest.mark.parametrize("length", [2, 3, 7, 32])
def test_condition_masks_shapes_free_positions_and_fraction(length):
    masks = ConditionMasks(prob=0.6, prefix_share=0.5, max_fraction=0.5, drop_prob=0.3)
    torch.manual_seed(0)
    given, dropped = masks.sample(2000, length)
    assert given.shape == (2000, length) and given.dtype == torch.bool
    assert dropped.shape == (2000,) and dropped.dtype == torch.bool
    assert torch.all((~given).any(1)), "every row keeps a free position"
    assert torch.all(given.sum(1) <= 0.5 * length + 1)
    has = given.any(1)
    assert torch.all(has[dropped]), "only conditional rows are dropped"
    # conditional rows always give something, so the rows with given positions are the conditional ones
    assert has.float().mean().item() == pytest.approx(0.6, abs=0.05)
    assert dropped.float().mean().item() == pytest.approx(0.6 * 0.3, abs=0.04)


def test_condition_masks_prefix_share_and_prob_one():
    torch.manual_seed(1)
    masks = ConditionMasks(prob=1.0, prefix_share=1.0, max_fraction=0.75, drop_prob=0.0)
    given, dropped = masks.sample(500, 16)
    assert torch.all(given.any(1)), "prob=1: every row is conditional"
    assert not dropped.any()
    assert all(_is_prefix(row) for row in given), "prefix_share=1: every mask is a prefix"
    assert torch.all(given.sum(1) <= 12)
    given, _ = ConditionMasks(prob=1.0, prefix_share=0.0, max_fraction=0.5, drop_prob=0.0).sample(500, 16)
    assert torch.all(given.any(1))
    spans_not_prefix = sum(not _is_prefix(row) for row in given)
    assert spans_not_prefix > 250, "prefix_share=0: spans land anywhere, mostly not at the start"
    given, _ = ConditionMasks(prob=1.0, prefix_share=0.5, max_fraction=0.5, drop_prob=0.0).sample(2000, 16)
    share = sum(_is_prefix(row) for row in given) / 2000
    assert 0.5 <= share < 0.7


def test_condition_masks_are_deterministic_under_the_global_seed():
    masks = ConditionMasks()
    torch.manual_seed(7)
    a = masks.sample(64, 16)
    torch.manual_seed(7)
    b = masks.sample(64, 16)
    torch.manual_seed(8)
    c = masks.sample(64, 16)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


@pytest.mark.parametrize("bad,key", [({"prob": 0.0}, "module.condition.prob"),
                                     ({"prob": 1.5}, "module.condition.prob"),
                                     ({"max_fraction": 1.0}, "module.condition.max_fraction"),
                                     ({"max_fraction": 0.0}, "module.condition.max_fraction"),
                                     ({"drop_prob": 1.0}, "module.condition.drop_prob"),
                                     ({"prefix_share": -0.1}, "module.condition.prefix_share")])
def test_condition_masks_refuse_bad_values_by_name(bad, key):
    with pytest.raises(ConfigError, match=key):
        ConditionMasks(**bad)


def test_masks_config_composes_to_condition_masks(tmp_path, cache_dir):
    overrides = tiny_train_overrides(tmp_path, cache_dir) + ["condition@module.condition=masks"]
    cfg = compose_config("train", overrides)
    from hydra.utils import instantiate

    masks = instantiate(cfg.module.condition)
    assert isinstance(masks, ConditionMasks) and 0 < masks.prob <= 1 and masks.drop_prob > 0


# ------------------------------------------------------------------------------------------- templates
@pytest.fixture(scope="module")
def tokenizer(cache_dir):
    from textflow.data import TrainedBPE

    texts = [p.read_text() for p in sorted((FIXTURE_CORPUS / "train").glob("*.txt"))]
    return TrainedBPE(vocab_size=300).build(texts=texts, cache_dir=str(cache_dir), corpus_key="conditioning")


def gap(n: int) -> str:
    """A template gap of ``n`` tokens (``__n__`` passes Hydra's command-line grammar unquoted)."""
    return f"__{n}__"


def test_continuation_template_gives_a_prefix(tokenizer):
    ids, given = parse_template("The king", tokenizer, seq_len=16)
    want = tokenizer.encode("The king")
    assert len(ids) == len(given) == 16 and 0 < len(want) < 16
    assert given == [True] * len(want) + [False] * (16 - len(want))
    assert ids[:len(want)] == want and ids[len(want):] == [0] * (16 - len(want))


def test_gap_template_leaves_exactly_n_free_positions_between_pieces(tokenizer):
    ids, given = parse_template(f"The king {gap(3)} the crown", tokenizer, seq_len=24)
    head, tail = tokenizer.encode("The king"), tokenizer.encode(" the crown")
    n1, n2 = len(head), len(tail)
    assert given[:n1] == [True] * n1 and ids[:n1] == head
    assert given[n1:n1 + 3] == [False] * 3
    assert given[n1 + 3:n1 + 3 + n2] == [True] * n2 and ids[n1 + 3:n1 + 3 + n2] == tail
    assert not any(given[n1 + 3 + n2:]) and sum(given) == n1 + n2
    _, given2 = parse_template(f"{gap(2)} king", tokenizer, seq_len=8)
    assert given2[:2] == [False, False] and given2[2]


def test_bad_templates_are_refused_in_one_line(tokenizer):
    long = "The king went to the harbour and counted every boat " * 3
    with pytest.raises(ConfigError, match="seq_len=8"):
        parse_template(long, tokenizer, seq_len=8)
    for empty in ("", "   "):
        with pytest.raises(ConfigError, match="empty"):
            parse_template(empty, tokenizer, seq_len=8)
    with pytest.raises(ConfigError, match="gives no tokens"):
        parse_template(gap(3), tokenizer, seq_len=8)
    with pytest.raises(ConfigError, match=gap(0)):
        parse_template(f"The {gap(0)} king", tokenizer, seq_len=8)
    n = len(tokenizer.encode("The king"))
    with pytest.raises(ConfigError, match="nothing is left"):
        parse_template("The king", tokenizer, seq_len=n)
    with pytest.raises(ConfigError, match="prompt_tokens"):
        prefix_prompts([[1, 2, 3, 4]], prompt_tokens=4, seq_len=4)
    ids, given = prefix_prompts([[5, 6, 7, 8]], prompt_tokens=2, seq_len=4)
    assert ids == [[5, 6, 0, 0]] and given == [[True, True, False, False]]


def test_read_prompts(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_prompts(tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n   \n\n")
    with pytest.raises(DataError, match="no prompts"):
        read_prompts(empty)
    good = tmp_path / "good.txt"
    good.write_text(f"The king\n\n  {gap(2)} the crown\n")
    assert read_prompts(good) == ["The king", f"  {gap(2)} the crown"]


# ------------------------------------------------------------------------------------ flow-matching loss
class SpyBackbone(nn.Module):
    def __init__(self, *, self_condition: bool = False, bump=None):
        super().__init__()
        self.self_condition = self_condition
        self.w = nn.Parameter(torch.tensor(0.7))
        self.bump = bump
        self.calls = []

    def forward(self, z, t, x_prev=None):
        self.calls.append((z.clone(), t.clone(), None if x_prev is None else x_prev.clone()))
        out = self.w * z + 0.2 * expand_time(t, z)
        if x_prev is not None:
            out = out + 0.1 * x_prev
        return out if self.bump is None else out + self.bump


def _loss_batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(4, L, 3, generator=g)
    t = torch.rand(4, generator=g)
    noise = torch.randn(4, L, 3, generator=g)
    given = torch.zeros(4, L, dtype=torch.bool)
    given[0, :3] = True
    given[1, 4:6] = True
    given[3, :5] = True  # row 2: unconditional
    dropped = torch.tensor([False, False, False, True])
    return x, t, noise, given, dropped


def test_loss_without_condition_is_plain_mse():
    x, t, noise, _, _ = _loss_batch()
    path = LinearPath()
    net = SpyBackbone()
    loss = flow_matching_loss(net, path, x=x, t=t, noise=noise)
    tt = t.view(-1, 1, 1)
    z = tt * x + (1 - tt) * noise
    with torch.no_grad():
        assert loss.item() == F.mse_loss(net(z, t), x).item()
    assert torch.equal(net.calls[0][0], z) and torch.equal(net.calls[0][1], t)


def test_loss_ignores_given_positions_and_feeds_them_clean_at_time_one():
    x, t, noise, given, dropped = _loss_batch()
    path = LinearPath()
    net = SpyBackbone()
    loss = flow_matching_loss(net, path, x=x, t=t, noise=noise, given=given, dropped=dropped)
    bumped = flow_matching_loss(SpyBackbone(bump=given.unsqueeze(-1) * 1e3), path, x=x, t=t, noise=noise,
                                given=given, dropped=dropped)
    assert loss.item() == bumped.item(), "the output on given positions must not enter the loss"
    z_seen, t_seen, _ = net.calls[0]
    tt = t.view(-1, 1, 1)
    z_t = tt * x + (1 - tt) * noise
    free = ~given
    with torch.no_grad():
        out = net.w * z_seen + 0.2 * expand_time(t_seen, z_seen)
    manual = ((out - x) ** 2).mean(-1)[free].mean()
    torch.testing.assert_close(loss, manual, rtol=1e-6, atol=1e-7)
    assert torch.equal(z_seen[free], z_t[free])
    kept = given & ~dropped.unsqueeze(1)
    gone = given & dropped.unsqueeze(1)
    assert torch.equal(z_seen[kept], x[kept]), "conditional rows see the clean latents"
    assert gone.any() and torch.all(z_seen[gone] == 0), "dropped rows see zeros on their given positions"
    assert t_seen.shape == (4, L) and torch.all(t_seen[given] == 1)
    assert torch.equal(t_seen[free], t.unsqueeze(1).expand(4, L)[free])
    loss.backward()
    assert net.w.grad is not None and torch.isfinite(net.w.grad)


def test_loss_restores_the_self_conditioning_input_on_given_positions():
    x, t, noise, given, dropped = _loss_batch(seed=3)
    net = SpyBackbone(self_condition=True)
    flow_matching_loss(net, LinearPath(), x=x, t=t, noise=noise, self_condition=True, given=given,
                       dropped=dropped)
    assert len(net.calls) == 2
    kept, gone = given & ~dropped.unsqueeze(1), given & dropped.unsqueeze(1)
    for _, _, prev in net.calls:
        assert torch.equal(prev[kept], x[kept]) and torch.all(prev[gone] == 0)
    assert torch.all(net.calls[0][2][~given] == 0), "the first pass gets zeros on free positions"


# ----------------------------------------------------------------------------------------- end to end
def _train(out, cache_dir, *extra):
    cfg = compose_config("train", tiny_train_overrides(out, cache_dir) + [
        "trainer.max_steps=1", "logger=none", "callbacks=none", *extra])
    _, objects = train_entry.run(cfg)
    return objects["checkpoint"]


@pytest.fixture(scope="module")
def conditional_ckpt(tmp_path_factory, cache_dir):
    return _train(tmp_path_factory.mktemp("cond-train"), cache_dir, "condition@module.condition=masks")


def _sample(ckpt, out, *extra):
    overrides = [f"ckpt_path={ckpt}", f"dirs.output_dir={out}", "num_samples=3", "batch_size=2",
                 "sampler.steps=2", "print_samples=1", "evaluation=diversity", "logger=none",
                 "diagnostics=false"]
    cfg = compose_config("sample", overrides + list(extra))
    metrics, objects = sample_entry.run(cfg)
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    saved = json.loads((out / "metrics.json").read_text())
    return metrics, objects, rows, saved


def test_train_with_masks_then_sample_prompts_end_to_end(conditional_ckpt, tmp_path):
    loaded = load_run(conditional_ckpt)
    assert loaded.config.module.condition._target_ == "textflow.conditioning.ConditionMasks"
    tok = loaded.tokenizer
    seq_len = loaded.info["seq_len"]

    # a continuation prompt
    _, objects, rows, saved = _sample(conditional_ckpt, tmp_path / "prompt", "prompt=The king")
    head = tok.encode("The king")
    assert len(rows) == 3
    for row in rows:
        assert row["prompt"] == "The king" and len(row["token_ids"]) == seq_len
        assert row["token_ids"][:len(head)] == head
        assert row["given"] == [True] * len(head) + [False] * (seq_len - len(head))
    for block in ("continuation/conditional", "continuation/unconditional"):
        assert block in saved and saved[block]["num_samples"] == 3, block
    assert "continuation/true" not in saved
    baseline = objects["generation"].baseline
    assert baseline is not None and baseline.ids.shape == (3, seq_len)
    assert any(ids[:len(head)] != head for ids in baseline.ids.tolist()), "the baseline has no prompt"

    # held-out prompts with guidance: the first prompt_tokens of real blocks, scored against the true rest
    metrics, _, rows, saved = _sample(conditional_ckpt, tmp_path / "heldout", "prompt_source=heldout",
                                      "prompt_tokens=4", "sampler.cfg_scale=2")
    blocks = heldout_blocks(loaded.config.data.corpus, tok, seq_len=seq_len, num=3)
    assert blocks
    for i, row in enumerate(rows):
        assert row["token_ids"][:4] == blocks[i % len(blocks)][:4]
        assert row["given"][:5] == [True] * 4 + [False] and "prompt" in row
        assert row["sampler"]["cfg_scale"] == 2.0
    assert metrics["nfe"] == 4, "cfg_scale 2: two network calls per step"
    for block in ("continuation/conditional", "continuation/unconditional", "continuation/true"):
        assert block in saved, block

    # a prompts file with an infilling template: sample i follows line i mod P, given tokens kept exactly
    prompts = tmp_path / "prompts.txt"
    infill = f"The king {gap(2)} the"
    prompts.write_text(f"{infill}\nApple\n")
    _, _, rows, saved = _sample(conditional_ckpt, tmp_path / "file", f"prompts_file={prompts}")
    assert [row["prompt"] for row in rows] == [infill, "Apple", infill]
    for row in rows:
        ids, given = parse_template(row["prompt"], tok, seq_len=seq_len)
        assert row["given"] == given
        assert [a for a, g in zip(row["token_ids"], given) if g] == [a for a, g in zip(ids, given) if g]
    assert not any(key.startswith("continuation/") for key in saved), "infilling has no single continuation"
    # a gap template passes Hydra's command-line grammar unquoted
    cfg = compose_config("sample", [f"ckpt_path={conditional_ckpt}", f"prompt={infill}"])
    assert cfg.prompt == infill


def test_prompt_on_an_unconditional_checkpoint_is_one_line_exit_2(tmp_path, cache_dir):
    ckpt = _train(tmp_path / "plain", cache_dir)
    proc = run_cli("sample.py", f"ckpt_path={ckpt}", "prompt=The king", "num_samples=1",
                   "evaluation=diversity", "logger=none", f"hydra.run.dir={tmp_path / 'sample'}")
    assert proc.returncode == 2, proc.stderr[-3000:]
    err = proc.stderr.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1 and err.startswith("error:"), err
    assert "condition@module.condition=masks" in err, err
