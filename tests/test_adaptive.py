"""``sampler=adaptive``: churn only near a decision boundary of the readout (docs/samplers.md)."""

from __future__ import annotations

import math

import pytest
import torch

from test_golden import PATHS, build_autoencoder, build_backbone
from test_samplers import GaussianDenoiser
from textflow.denoiser import FlowDenoiser
from textflow.errors import ConfigError
from textflow.noise import per_sample_generators
from textflow.paths import LinearPath, VPPath
from textflow.samplers import Sampler
from textflow.samplers.adaptive import decidedness, token_closeness


def _x0(seed=3, shape=(4, 8, 1)):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _records(sampler, den, x0, gens):
    records = []
    out = sampler(den, x0, generator=gens, callback=records.append)
    return out, records


class SplitReadout(GaussianDenoiser):
    """The Gaussian denoiser with a readout that is decided (one token far ahead) at the first ``decided``
    positions of every sequence and a two-way tie elsewhere; records the (z, t) of every call."""

    def __init__(self, path, decided: int = 3, vocab: int = 5):
        super().__init__(path, vocab=vocab)
        self.decided, self.calls = decided, []

    def __call__(self, z, t):
        self.calls.append((z.clone(), t.clone()))
        return super().__call__(z, t)

    def readout(self, x):
        logits = torch.zeros(*x.shape[:2], self.table.shape[0])
        logits[..., :2] = 5.0  # undecided: a tie between tokens 0 and 1
        logits[:, : self.decided, 0] = 80.0  # decided: token 0 with probability ~1
        return logits


def _tiny_model(path: str = "linear") -> FlowDenoiser:
    return FlowDenoiser(backbone=build_backbone(), path=PATHS[path](),
                        autoencoder=build_autoencoder("embed_tied"))


# ---------------------------------------------------------------------------------- reductions to ode / sde
@pytest.mark.parametrize("closeness", ["margin", "entropy", "one"])
@pytest.mark.parametrize("path", [LinearPath(), VPPath(prediction="v")], ids=["linear", "vp"])
def test_gamma_zero_equals_ode_bit_for_bit_and_draws_no_noise(closeness, path):
    den = GaussianDenoiser(path)
    ode = Sampler(name="ode", steps=6)(den, _x0())
    gen = torch.Generator().manual_seed(5)
    state = gen.get_state().clone()
    out = Sampler(name="adaptive", steps=6, gamma=0.0, closeness=closeness)(den, _x0(), generator=gen)
    assert torch.equal(out.latents, ode.latents)
    assert torch.equal(gen.get_state(), state), "gamma = 0 must not draw noise"
    assert out.extras == {"injected_noise": 0.0}


@pytest.mark.parametrize("gamma", [0.7, 1.5, 20.0])
@pytest.mark.parametrize("path", [LinearPath(sigma=0.8), VPPath(prediction="v")], ids=["linear", "vp"])
def test_closeness_one_equals_sde_bit_for_bit(gamma, path):
    den = GaussianDenoiser(path)
    sde_alphas = []
    sde = Sampler(name="sde", steps=6, gamma=gamma)(
        den, _x0(), generator=per_sample_generators(2, range(4)),
        callback=lambda r: sde_alphas.append(r.extras["churn_alpha"]))
    out, records = _records(Sampler(name="adaptive", steps=6, gamma=gamma, closeness="one"), den, _x0(),
                            per_sample_generators(2, range(4)))
    assert torch.equal(out.latents, sde.latents)
    for rec, alpha in zip(records, sde_alphas):
        assert torch.all(rec.extras["churn_alpha"] == torch.tensor(alpha, dtype=torch.float32))
        assert torch.all(rec.extras["closeness"] == 1.0)
    # injected noise: sde's sum over steps of (1 - alpha)
    assert out.extras["injected_noise"] == pytest.approx(sum(1 - a for a in sde_alphas), rel=1e-6)
    assert records[-1].extras["injected_noise"] == out.extras["injected_noise"]


@pytest.mark.parametrize("path", ["linear", "vp"])
def test_tiny_real_model_reduces_to_ode_and_sde_bit_for_bit(path):
    den = _tiny_model(path)
    x0 = _x0(shape=(2, 8, 8))
    ode = Sampler(name="ode", steps=4)(den, x0)
    zero = Sampler(name="adaptive", steps=4, gamma=0.0)(den, x0, generator=per_sample_generators(0, range(2)))
    assert torch.equal(zero.latents, ode.latents)
    sde = Sampler(name="sde", steps=4, gamma=1.5)(den, x0, generator=per_sample_generators(0, range(2)))
    one = Sampler(name="adaptive", steps=4, gamma=1.5, closeness="one")(
        den, x0, generator=per_sample_generators(0, range(2)))
    assert torch.equal(one.latents, sde.latents)
    # the real readout makes margin differ from sde: the closeness varies across tokens after step 0
    out, records = _records(Sampler(name="adaptive", steps=4, gamma=1.5), den, x0,
                            per_sample_generators(0, range(2)))
    assert not torch.equal(out.latents, sde.latents)
    assert torch.all(records[0].extras["closeness"] == 1.0)
    later = records[1].extras["closeness"]
    assert later.shape == (2, 8) and float(later.min()) < float(later.max()) <= 1.0
    assert records[1].t.shape == (2, 8)  # the network ran at per-token time


# --------------------------------------------------------------------------------------- the adaptive churn
@pytest.mark.parametrize("closeness", ["margin", "entropy"])
def test_decided_tokens_get_no_noise_and_undecided_ones_are_churned(closeness):
    den = SplitReadout(LinearPath(), decided=3)
    sampler = Sampler(name="adaptive", steps=4, gamma=2.0, closeness=closeness, scale=0.01)
    out, records = _records(sampler, den, _x0(shape=(2, 6, 1)), per_sample_generators(1, range(2)))
    h = 0.25
    assert torch.all(records[0].extras["closeness"] == 1.0)  # step 0: no readout yet, the plain sde step
    assert torch.all(records[0].extras["churn_alpha"] == 1 - 2.0 * h) and den.calls[0][1].shape == (2,)
    for i in (1, 2):
        alpha, close = records[i].extras["churn_alpha"], records[i].extras["closeness"]
        t_in = den.calls[i][1]
        assert torch.all(close[:, :3] < 1e-30) and torch.all(alpha[:, :3] == 1.0)  # decided: no churn
        assert torch.all(close[:, 3:] == 1.0) and torch.all(alpha[:, 3:] == 1 - 2.0 * h)  # a tie: full churn
        assert t_in.shape == (2, 6)  # per-token time: decided tokens keep t, the others go back to alpha t
        assert torch.all(t_in[:, :3] == i * h) and torch.all(t_in[:, 3:] == (1 - 2.0 * h) * i * h)
    assert torch.all(records[-1].extras["churn_alpha"] == 1.0)
    assert torch.equal(out.latents, records[-1].x_hat)  # the last step returns x_hat
    # injected noise: the mean over tokens of (1 - alpha), summed over steps
    assert out.extras["injected_noise"] == pytest.approx(2.0 * h + 2 * (2.0 * h) * 3 / 6)
    running = [r.extras["injected_noise"] for r in records]
    assert running == sorted(running) and running[-1] == out.extras["injected_noise"]


@pytest.mark.parametrize("path", [LinearPath(), VPPath(prediction="v")], ids=["linear", "vp"])
def test_decided_latents_enter_the_network_unchurned(path):
    """Tokens with alpha = 1 reach the network with exactly the latent the previous Euler step made."""
    from textflow.samplers.steps import euler_update

    den = SplitReadout(path, decided=2)
    _, records = _records(Sampler(name="adaptive", steps=5, gamma=1.0, scale=0.01), den, _x0(shape=(3, 5, 1)),
                          per_sample_generators(4, range(3)))
    first = records[0]
    z_after = euler_update(den, first.z, first.x_hat, first.t, first.t_next)
    z_in, _ = den.calls[1]
    assert torch.equal(z_in[:, :2], z_after[:, :2])
    assert not torch.allclose(z_in[:, 2:], z_after[:, 2:])


@pytest.mark.parametrize("levels,expected", [(None, math.exp(-1 / 0.25)), ("default", 5 / 256)])
def test_default_scale_decided_tokens_get_exp_minus_one_over_scale_of_the_churn(levels, expected):
    den = SplitReadout(LinearPath(), decided=3)  # the default resolution 1/256 rounds exp(-4) = 0.0183 to 5/256
    knobs = {} if levels == "default" else {"levels": levels}
    _, records = _records(Sampler(name="adaptive", steps=4, gamma=2.0, **knobs), den, _x0(shape=(2, 6, 1)),
                          per_sample_generators(1, range(2)))
    close = records[1].extras["closeness"]
    assert torch.allclose(close[:, :3], torch.full((2, 3), expected), rtol=1e-4)
    assert torch.all(close[:, 3:] == 1.0)


class LogitsReadout:
    """A denoiser stand-in whose readout is the identity: its "latents" are the logits themselves."""

    @staticmethod
    def readout(x):
        return x


def _closeness(logits, closeness, scale=0.25, levels=None):
    return token_closeness(decidedness(LogitsReadout(), logits, closeness=closeness), scale=scale, levels=levels)


def test_closeness_mappings():
    logits = torch.tensor([[[0.0, 0.0, -1e9], [50.0, 0.0, 0.0], [math.log(3.0), 0.0, float("-inf")]]])
    margin = _closeness(logits, "margin")
    assert margin[0, 0] == 1.0 and margin[0, 1] == pytest.approx(math.exp(-4), rel=1e-5)
    assert margin[0, 2] == pytest.approx(math.exp(-0.5 / 0.25), rel=1e-5)  # p = (0.75, 0.25): margin 0.5
    entropy = _closeness(logits, "entropy")
    assert entropy[0, 0] == 1.0 and entropy[0, 1] == pytest.approx(math.exp(-4), rel=1e-4)
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert entropy[0, 2] == pytest.approx(math.exp(-(1 - h / math.log(2)) / 0.25), rel=1e-5)
    assert torch.all(torch.isfinite(entropy))  # a -inf logit contributes 0 entropy, not nan
    uniform = _closeness(torch.zeros(1, 1, 100), "entropy")
    assert uniform[0, 0] == 1.0  # more undecided than a two-way tie: full churn


def test_levels_round_closeness_keeping_ties_and_decided_tokens_exact():
    logits = torch.tensor([[[0.0, 0.0, -1e9], [50.0, 0.0, 0.0], [math.log(3.0), 0.0, float("-inf")]]])
    rounded = _closeness(logits, "margin", levels=8)
    assert rounded[0, 0] == 1.0 and rounded[0, 1] == 0.0  # a tie keeps full churn; exp(-4) < 1/16: none
    assert rounded[0, 2] == 1 / 8  # exp(-2) = 0.135 rounds to the nearest eighth
    fine = _closeness(logits, "margin", levels=1000)
    assert torch.allclose(fine, _closeness(logits, "margin"), atol=5e-4)


def test_closeness_is_the_same_over_chunks_and_refuses_a_non_categorical_readout():
    from textflow.kernels import chunk_budget
    logits = torch.randn(3, 5, 7, generator=torch.Generator().manual_seed(0)) * 3
    for closeness in ("margin", "entropy"):
        whole = _closeness(logits, closeness)
        with chunk_budget(7):  # one position per chunk
            assert torch.equal(_closeness(logits, closeness), whole)

    class Pixels:
        @staticmethod
        def readout(x):
            return x.flatten(1)

    with pytest.raises(ConfigError, match=r"closeness='margin' needs per-token readout logits.*closeness=one"):
        decidedness(Pixels(), logits, closeness="margin")


@pytest.mark.parametrize("levels", [None, 1, 4])
def test_levels_keep_the_ode_and_sde_identities(levels):
    den = SplitReadout(LinearPath(), decided=3)
    x0, gens = _x0(shape=(2, 6, 1)), lambda: per_sample_generators(5, range(2))
    ode = Sampler(name="ode", steps=4)(den, x0).latents
    assert torch.equal(Sampler(name="adaptive", steps=4, gamma=0.0, levels=levels)(den, x0, generator=gens()).latents, ode)
    sde = Sampler(name="sde", steps=4, gamma=1.5)(den, x0, generator=gens()).latents
    one = Sampler(name="adaptive", steps=4, gamma=1.5, closeness="one", levels=levels)(den, x0, generator=gens())
    assert torch.equal(one.latents, sde)


class RecordingGaussian(GaussianDenoiser):
    """The Gaussian denoiser (graded readout margins) recording the time of every call."""

    def __init__(self, path):
        super().__init__(path)
        self.times = []

    def __call__(self, z, t):
        self.times.append(t.clone())
        return super().__call__(z, t)


def test_levels_bound_the_distinct_times_per_step():
    def distinct(levels):
        den = RecordingGaussian(LinearPath())
        Sampler(name="adaptive", steps=5, gamma=2.0, levels=levels)(den, _x0(shape=(2, 16, 1)),
                                                                   generator=per_sample_generators(1, range(2)))
        return max(t.unique().numel() for t in den.times)

    assert distinct(None) > 3  # continuous closeness: a time per token
    assert distinct(2) <= 3


@pytest.mark.parametrize("levels", [0, -1, 1.5, "many"])
def test_bad_levels_are_refused(levels):
    with pytest.raises(ConfigError, match="sampler.levels"):
        Sampler(name="adaptive", steps=4, levels=levels)


# --------------------------------------------------------------------------------- seeding, batch invariance
def test_batch_invariance_and_seeding():
    den = SplitReadout(LinearPath(), decided=2)
    sampler = Sampler(name="adaptive", steps=5, gamma=1.5)
    full = sampler(den, _x0(shape=(4, 6, 1)), generator=per_sample_generators(7, range(4))).latents
    part = sampler(den, _x0(shape=(4, 6, 1))[2:], generator=per_sample_generators(7, [2, 3])).latents
    assert torch.allclose(full[2:], part, atol=1e-6)
    again = sampler(den, _x0(shape=(4, 6, 1)), generator=per_sample_generators(7, range(4))).latents
    assert torch.equal(full, again)
    other = sampler(den, _x0(shape=(4, 6, 1)), generator=per_sample_generators(8, range(4))).latents
    assert not torch.allclose(full, other)


def test_renoise_takes_a_per_token_alpha():
    """``path.renoise`` with a (B, L) alpha equals the float-alpha re-noising token by token."""
    z, noise = _x0(shape=(2, 3, 4)), _x0(seed=9, shape=(2, 3, 4))
    t = torch.tensor([0.3, 0.6])
    alpha = torch.tensor([[1.0, 0.5, 0.2], [0.9, 0.0, 1.0]])
    for path in (LinearPath(sigma=0.7), VPPath(prediction="v")):
        z_b, t_b = path.renoise(z, t, alpha, noise)
        assert t_b.shape == (2, 3) and torch.allclose(t_b, alpha * t.unsqueeze(-1))
        for b in range(2):
            for i in range(3):
                want, want_t = path.renoise(z[b:b + 1, i:i + 1], t[b:b + 1], float(alpha[b, i]),
                                            noise[b:b + 1, i:i + 1])
                assert torch.allclose(z_b[b, i], want[0, 0], atol=1e-6)
                assert torch.isclose(t_b[b, i], want_t[0])
        per_token_t, _ = path.renoise(z, t.unsqueeze(-1).expand(2, 3), torch.tensor([0.5, 0.8]), noise)
        per_seq, _ = path.renoise(z, t, torch.tensor([0.5, 0.8]), noise)
        assert torch.allclose(per_token_t, per_seq, atol=1e-6)


# ------------------------------------------------------------------------------------------------- knobs
@pytest.mark.parametrize("knobs,match", [
    (dict(gamma=-1.0), "sampler.gamma=-1.0 is invalid"),
    (dict(gamma=float("nan")), "sampler.gamma=nan is invalid"),
    (dict(gamma=float("inf")), "sampler.gamma=inf is invalid"),
    (dict(closeness="logit"), "sampler.closeness='logit' is not valid; choose one of: margin, entropy, one"),
    (dict(scale=0.0), "sampler.scale=0.0 is invalid"),
    (dict(scale=float("inf")), "sampler.scale=inf is invalid"),
    (dict(scale="big"), "sampler.scale='big' is invalid"),
])
def test_bad_knobs_are_one_line_config_errors(knobs, match):
    with pytest.raises(ConfigError, match=match.replace("(", r"\(")) as err:
        Sampler(name="adaptive", steps=4, **knobs)
    assert "\n" not in str(err.value)


def test_a_non_categorical_readout_is_refused_unless_closeness_is_one():
    class Pixels(GaussianDenoiser):
        def readout(self, x):
            return x.flatten(1)  # (B, L * D): an image decoder's pixels, not per-token logits

    den = Pixels(LinearPath())
    with pytest.raises(ConfigError, match=r"sampler.closeness='margin' needs per-token readout") as err:
        Sampler(name="adaptive", steps=3)(den, _x0(), generator=torch.Generator().manual_seed(0))
    assert "\n" not in str(err.value)
    Sampler(name="adaptive", steps=3, closeness="one")(den, _x0(), generator=torch.Generator().manual_seed(0))


def test_a_record_from_before_levels_existed_rebuilds_continuous_closeness():
    from textflow.samplers.spec import recorded_knobs

    old = {"name": "adaptive", "steps": 8, "time": "UniformTime", "gamma": 0.75, "closeness": "margin", "scale": 0.25}
    assert recorded_knobs(old) == ("adaptive", {**{k: v for k, v in old.items() if k != "name"}, "levels": None})
    assert recorded_knobs({**old, "levels": 16})[1]["levels"] == 16  # a recorded value wins
    assert recorded_knobs({"name": "ode", "steps": 4}) == ("ode", {"steps": 4})
    made_in_code = Sampler(name="adaptive", steps=4).describe()  # the default written down, not left out
    assert made_in_code["levels"] == 256 and recorded_knobs(made_in_code)[1]["levels"] == 256
