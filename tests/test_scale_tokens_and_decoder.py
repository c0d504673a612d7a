"""Scale tokens (one-pass SC-CFG, docs/samplers.md, "Scale tokens") and ELF's decoder objective
(docs/training.md, "Objectives"): the DiT's scale tokens, one-call guided sampling and its refusals,
the log-uniform training scales, the learned-guidance target, the decoder loss and the decoder step of
LatentFlowModule, and train.py / sample.py end to end with both on."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import sample as sample_entry
import train as train_entry
from test_self_conditioning import _fill  # random weights for a fresh DiT
from conftest import compose_config, tiny_train_overrides
from textflow.autoencoders import EmbeddingAutoencoder
from textflow.backbones import DiT
from textflow.checkpoint import build_module, load_run
from textflow.cli import user_error
from textflow.denoiser import FlowDenoiser
from textflow.errors import ConfigError
from textflow.guidance import SelfConditioned
from textflow.objectives import decoder_loss, flow_matching_loss, sample_guidance_scales
from textflow.paths import LinearPath, VPPath
from textflow.samplers import Sampler
from textflow.sampling.generate import generate
from textflow.time import LogitNormalTime

pytestmark = pytest.mark.filterwarnings("ignore:.*self.trainer. reference is not registered.*")

LATENT_DIM, VOCAB, MAX_LEN = 6, 24, 8




def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def scale_dit(scale_tokens: int = 2, seed: int = 0, **kw) -> DiT:
    return _fill(DiT(latent_dim=LATENT_DIM, max_len=MAX_LEN, width=16, depth=2, heads=2, mlp_ratio=2.0,
                     self_condition=True, scale_tokens=scale_tokens, **kw), seed)


def make_denoiser(scale_tokens: int = 2) -> FlowDenoiser:
    ae = _fill(EmbeddingAutoencoder(vocab_size=VOCAB, latent_dim=LATENT_DIM, readout="tied"), 1)
    return FlowDenoiser(backbone=scale_dit(scale_tokens), path=LinearPath(), autoencoder=ae)


# ------------------------------------------------------------------------------------ 1. the DiT's scale tokens
def test_scale_tokens_keep_the_output_shape_and_the_scale_changes_the_output():
    net = scale_dit()
    z, t = _randn(3, MAX_LEN, LATENT_DIM), torch.tensor([0.2, 0.5, 0.9])
    prev = _randn(3, MAX_LEN, LATENT_DIM, seed=1)
    with torch.no_grad():
        ones = net(z, t, prev, scale=torch.ones(3))
        assert ones.shape == (3, MAX_LEN, LATENT_DIM)  # the scale tokens are dropped from the output
        assert torch.equal(net(z, t, prev), ones)  # None means ones
        low, high = net(z, t, prev, scale=torch.full((3,), 0.5)), net(z, t, prev, scale=torch.full((3,), 5.0))
        assert not torch.allclose(low, high, atol=1e-4) and not torch.allclose(low, ones, atol=1e-4)
        short = net(z[:, :5], t, prev[:, :5], scale=torch.full((3,), 2.0))  # shorter sequences too
    assert short.shape == (3, 5, LATENT_DIM) and torch.isfinite(short).all()


def test_the_scale_tokens_are_the_ones_dropped_and_output_i_is_token_i():
    # without attention blocks each position reads only its own input: output i must move with z_i alone
    net = _fill(DiT(latent_dim=LATENT_DIM, max_len=MAX_LEN, width=16, depth=0, heads=2, self_condition=True,
                    scale_tokens=3), 0)
    z, t, scale = _randn(2, MAX_LEN, LATENT_DIM), torch.tensor([0.3, 0.6]), torch.tensor([1.0, 2.0])
    moved = z.clone()
    moved[:, -1] += 1.0
    with torch.no_grad():
        out, out_moved = net(z, t, scale=scale), net(moved, t, scale=scale)
    assert torch.allclose(out[:, :-1], out_moved[:, :-1], atol=1e-6, rtol=0)
    assert not torch.allclose(out[:, -1], out_moved[:, -1], atol=1e-2)
    full = []  # and with attention: the returned positions are the last L of the extended sequence
    deep = scale_dit(scale_tokens=3)
    deep.proj_out.register_forward_hook(lambda m, args, o: full.append(o))
    with torch.no_grad():
        out = deep(z, t, scale=scale)
    assert full[0].shape == (2, 3 + MAX_LEN, LATENT_DIM) and torch.equal(out, full[0][:, 3:])


@pytest.mark.parametrize("per_token", [False, True])
def test_each_row_depends_on_its_own_scale_only(per_token):
    net = scale_dit()
    z, prev = _randn(2, MAX_LEN, LATENT_DIM), _randn(2, MAX_LEN, LATENT_DIM, seed=1)
    t = torch.tensor([0.3, 0.7])
    if per_token:  # per-token time (commit, conditioning) with distinct times inside each row
        t = t[:, None].expand(2, MAX_LEN).clone()
        t[0, :3], t[1, 5:] = 1.0, 0.1
    scale = torch.tensor([0.5, 4.0])
    with torch.no_grad():
        both = net(z, t, prev, scale=scale)
        for b in range(2):
            alone = net(z[b:b + 1], t[b:b + 1], prev[b:b + 1], scale=scale[b:b + 1])
            assert torch.allclose(both[b:b + 1], alone, atol=1e-5), b
        swapped = net(z, t, prev, scale=scale.flip(0))  # each row reads its own scale, not its neighbour's
        assert not torch.allclose(swapped[0], both[0], atol=1e-4)


def test_per_token_time_matches_per_sequence_time_with_scale_tokens():
    net = scale_dit()
    z, prev, t = _randn(3, MAX_LEN, LATENT_DIM), _randn(3, MAX_LEN, LATENT_DIM, seed=1), torch.tensor([0.2, 0.5, 0.8])
    scale = torch.tensor([0.5, 2.0, 5.0])
    with torch.no_grad():
        per_row = net(z, t, prev, scale=scale)
        per_token = net(z, t[:, None].expand(3, MAX_LEN), prev, scale=scale)
        assert torch.allclose(per_row, per_token, atol=1e-5)
        t_tok = t[:, None].expand(3, MAX_LEN).clone()
        t_tok[:, 0] = 1.0
        assert not torch.allclose(net(z, t_tok, prev, scale=scale)[:, 0], per_row[:, 0], atol=1e-4)


def test_scale_tokens_zero_is_exactly_the_plain_dit():
    kw = dict(latent_dim=4, max_len=8, width=16, depth=1, heads=2)
    for sc in (False, True):
        plain = DiT(**kw, self_condition=sc)
        zero = DiT(**kw, self_condition=sc, scale_tokens=0)
        assert list(zero.state_dict()) == list(plain.state_dict())
        assert {k: v.shape for k, v in zero.state_dict().items()} == {k: v.shape for k, v in plain.state_dict().items()}
    tokens = DiT(**kw, self_condition=True, scale_tokens=3)
    extra = set(tokens.state_dict()) - set(DiT(**kw, self_condition=True).state_dict())
    assert extra and all(k.startswith(("scale_base", "scale_mlp")) for k in extra)
    assert tokens.scale_base.shape == (1, 3, 16) and tokens.scale_range == (0.5, 5.0)
    with pytest.raises(ValueError, match="scale_tokens"):
        DiT(**kw, self_condition=True)(torch.randn(1, 8, 4), torch.rand(1), scale=torch.ones(1))


@pytest.mark.parametrize("kw,message", [
    (dict(scale_tokens=2), r"^backbone\.scale_tokens=2 needs backbone\.self_condition=true"),
    (dict(self_condition=True, scale_tokens=-1), r"^backbone\.scale_tokens=-1 is invalid"),
    (dict(self_condition=True, scale_tokens=1.5), r"^backbone\.scale_tokens=1\.5 is invalid"),
    (dict(self_condition=True, scale_tokens=True), r"^backbone\.scale_tokens=True is invalid"),
    (dict(self_condition=True, scale_tokens=2, scale_range=[5, 0.5]), r"^backbone\.scale_range=\[5, 0\.5\] is invalid"),
    (dict(self_condition=True, scale_tokens=2, scale_range=[1.0, 1.0]), r"^backbone\.scale_range=.* is invalid"),
    (dict(self_condition=True, scale_tokens=2, scale_range=[-0.5, 2.0]), r"^backbone\.scale_range=.* is invalid"),
    (dict(self_condition=True, scale_tokens=2, scale_range=[0.5, float("inf")]), r"^backbone\.scale_range=.* is invalid"),
    (dict(self_condition=True, scale_tokens=2, scale_range=[float("nan"), 2.0]), r"^backbone\.scale_range=.* is invalid"),
    (dict(self_condition=True, scale_tokens=2, scale_range=[0.0, 5.0]), r"^backbone\.scale_range=.* 0 < lo"),
    (dict(self_condition=True, scale_tokens=2, scale_range=[2.0, 5.0]), r"^backbone\.scale_range=.* lo <= 1 <= hi"),
    (dict(self_condition=True, scale_tokens=2, scale_range=[1, 2, 3]), r"^backbone\.scale_range=.* is invalid"),
    (dict(self_condition=True, scale_tokens=2, scale_range=["a", "b"]), r"^backbone\.scale_range=.* is invalid"),
    (dict(self_condition=True, scale_tokens=2, scale_range=5), r"^backbone\.scale_range=.* is invalid"),
])
def test_bad_scale_token_settings_are_refused_in_one_line(kw, message):
    with pytest.raises(ConfigError, match=message) as info:
        DiT(latent_dim=4, max_len=8, width=16, depth=1, heads=2, **kw)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------------------- 2. one-pass guided sampling
def _spy(backbone: nn.Module) -> list:
    calls: list = []

    def hook(module, args, kwargs, out):
        x_prev = args[2] if len(args) > 2 else kwargs.get("x_prev")
        calls.append((x_prev, kwargs.get("scale")))

    backbone.register_forward_hook(hook, with_kwargs=True)
    return calls


KNOBS = {"ode": {}, "sde": {"gamma": 1.5}}


@pytest.mark.parametrize("name", ["ode", "sde"])
def test_a_scale_token_model_guides_in_one_call_per_step_and_the_scale_reaches_the_backbone(name):
    steps, x0 = 4, _randn(2, MAX_LEN, LATENT_DIM, seed=3)
    den = make_denoiser()
    assert den.self_conditioned and den.scale_range == (0.5, 5.0)
    calls = _spy(den.backbone)
    guided = Sampler(name=name, steps=steps, sc_scale=3, **KNOBS[name])(
        den, x0, generator=torch.Generator().manual_seed(0))
    assert guided.nfe == den.nfe == len(calls) == steps  # K, not 2 K
    assert torch.isfinite(guided.latents).all() and guided.latents.shape == x0.shape
    for i, (x_prev, scale) in enumerate(calls):
        assert torch.equal(scale, torch.full((2,), 3.0)), i  # every call carries w, one per row
        assert (x_prev is None) == (i == 0), i  # and the remembered estimate after the first step
    plain = Sampler(name=name, steps=steps, **KNOBS[name])(den, x0, generator=torch.Generator().manual_seed(0))
    assert plain.nfe == steps and torch.equal(calls[-1][1], torch.ones(2))  # sc_scale = 1 passes 1
    assert not torch.allclose(plain.latents, guided.latents, atol=1e-4)  # the scale changes the result
    assert SelfConditioned(den, scale=3.0).calls_per_step == 1

    two_pass = make_denoiser(scale_tokens=0)  # the same self-conditioned model without scale tokens
    assert two_pass.scale_range is None and SelfConditioned(two_pass, scale=3.0).calls_per_step == 2
    out = Sampler(name=name, steps=steps, sc_scale=3, **KNOBS[name])(
        two_pass, x0, generator=torch.Generator().manual_seed(0))
    assert out.nfe == 2 * steps


def test_sc_scale_outside_the_trained_range_is_refused():
    den = make_denoiser()
    x0 = _randn(2, MAX_LEN, LATENT_DIM)
    for bad in (0.0, 0.4, 5.5, 100.0):
        with pytest.raises(ConfigError, match=rf"^sampler\.sc_scale={bad:g} is outside \[0\.5, 5\]") as info:
            Sampler(name="ode", steps=2, sc_scale=bad)(den, x0)
        assert "\n" not in str(info.value)
    assert den.nfe == 0  # refused before any network call

    class Loaded:  # what Sampler.denoiser asks of a loaded checkpoint
        def denoiser(self, *, use_ema=True):
            return den

    with pytest.raises(ConfigError, match=r"outside \[0\.5, 5\]"):
        Sampler(name="sde", steps=2, sc_scale=6).denoiser(Loaded())
    for edge in (0.5, 1.0, 5.0):  # the trained range is closed
        assert Sampler(name="ode", steps=2, sc_scale=edge).denoiser(Loaded()) is den
        assert Sampler(name="ode", steps=2, sc_scale=edge)(den, x0).nfe == 2
    narrow = FlowDenoiser(backbone=scale_dit(scale_range=(1.0, 2.0)), path=LinearPath(), autoencoder=den.autoencoder)
    with pytest.raises(ConfigError, match=r"outside \[1, 2\]"):
        Sampler(name="ode", steps=2, sc_scale=3)(narrow, x0)


def test_sde_at_gamma_zero_equals_ode_bit_for_bit_on_a_scale_token_model():
    den = make_denoiser()
    x0 = _randn(3, MAX_LEN, LATENT_DIM, seed=4)
    ode = Sampler(name="ode", steps=5, sc_scale=3)(den, x0)
    gen = torch.Generator().manual_seed(5)
    state = gen.get_state().clone()
    sde = Sampler(name="sde", steps=5, gamma=0.0, sc_scale=3)(den, x0, generator=gen)
    assert torch.equal(ode.latents, sde.latents) and ode.nfe == sde.nfe == 5
    assert torch.equal(gen.get_state(), state)


def test_one_pass_guided_sampling_is_seeded_and_batch_size_invariant():
    den = make_denoiser()
    sampler = Sampler(name="sde", steps=4, gamma=1.5, sc_scale=3)
    runs = {bs: generate(den, sampler, num_samples=4, seq_len=MAX_LEN, seed=7, batch_size=bs) for bs in (4, 3, 1)}
    for bs in (3, 1):
        assert torch.equal(runs[bs].ids, runs[4].ids)
        assert torch.allclose(runs[bs].latents, runs[4].latents, atol=1e-5)
    assert runs[4].nfe == 4
    other = generate(den, sampler, num_samples=4, seq_len=MAX_LEN, seed=8, batch_size=4)
    assert not torch.allclose(other.latents, runs[4].latents)


# ---------------------------------------------------------------------------------- 3. the training scales
def test_guidance_scales_are_log_uniform_on_the_range_and_seeded():
    lo, hi = 0.5, 5.0
    torch.manual_seed(0)
    w = sample_guidance_scales(20000, scale_range=(lo, hi))
    assert w.shape == (20000,) and (w >= lo).all() and (w <= hi).all()
    u = (torch.log1p(w.double()) - math.log1p(lo)) / (math.log1p(hi) - math.log1p(lo))  # U(0, 1) if log-uniform
    assert abs(torch.log1p(w.double()).mean().item() - (math.log1p(lo) + math.log1p(hi)) / 2) < 0.02
    empirical = torch.arange(1, 20001, dtype=torch.float64) / 20000
    assert (u.sort().values - empirical).abs().max() < 0.02  # Kolmogorov-Smirnov distance to U(0, 1)
    assert abs(w.double().median().item() - (math.sqrt((1 + lo) * (1 + hi)) - 1)) < 0.05  # not uniform in w
    torch.manual_seed(3)
    a = sample_guidance_scales(64, scale_range=(lo, hi))
    torch.manual_seed(3)
    assert torch.equal(a, sample_guidance_scales(64, scale_range=(lo, hi)))
    assert not torch.equal(a, sample_guidance_scales(64, scale_range=(lo, hi)))
    other = sample_guidance_scales(5000, scale_range=(1.0, 2.0))
    assert (other >= 1.0).all() and (other <= 2.0).all() and other.max() - other.min() > 0.9


# ------------------------------------------------------------------------------------ 4. the guided target
class Stub(nn.Module):
    """A self-conditioned backbone whose outputs are set: ``A`` for the first pass (x_prev None),
    ``C`` for the trained pass, times a gain of 1 that carries the gradient."""

    self_condition = True

    def __init__(self, a, c):
        super().__init__()
        self.a, self.c = a, c
        self.gain = nn.Parameter(torch.ones(()))
        self.calls: list = []

    def forward(self, z, t, x_prev=None, scale=None):
        self.calls.append({"x_prev": x_prev, "scale": scale, "grad": torch.is_grad_enabled()})
        return self.gain * (self.a if x_prev is None else self.c)


@pytest.mark.parametrize("path", [LinearPath(), VPPath()], ids=["linear", "vp"])
def test_the_learned_guidance_target_by_hand(path):
    shape = (3, 5, 4)
    x, noise = _randn(*shape, seed=1), _randn(*shape, seed=2)
    a, c = _randn(*shape, seed=3), _randn(*shape, seed=4)
    t, w = torch.tensor([0.2, 0.5, 0.8]), torch.tensor([0.5, 2.0, 4.0])
    target = path.target(path.sample(x, t, noise)).float()
    if isinstance(path, LinearPath):
        assert torch.equal(target, x)  # x-prediction: the plain target is the clean latent
    stub = Stub(a, c)
    loss = flow_matching_loss(stub, path, x=x, t=t, noise=noise, self_condition=True, scale=w)
    guided = target + (1 - 1 / w).view(-1, 1, 1) * (c - a)
    assert torch.allclose(loss, ((c - guided) ** 2).mean(), rtol=1e-5)
    first, second = stub.calls
    assert first["x_prev"] is None and not first["grad"] and torch.equal(first["scale"], w)
    assert torch.equal(second["x_prev"], path.to_x_hat(a, path.sample(x, t, noise).z, t)) and second["grad"]
    assert torch.equal(second["scale"], w)
    loss.backward()  # the guidance term is detached: d/dg mean((g C - T)^2) = mean(2 (C - T) C) at g = 1
    assert torch.allclose(stub.gain.grad, (2 * (c - guided) * c).mean(), rtol=1e-4)

    stub = Stub(a, c)  # a step without the first pass: x_prev = 0 and no guidance term
    plain = flow_matching_loss(stub, path, x=x, t=t, noise=noise, self_condition=False, scale=w)
    assert len(stub.calls) == 1 and torch.equal(stub.calls[0]["scale"], w)
    assert torch.allclose(plain, ((a - target) ** 2).mean(), rtol=1e-5)

    stub = Stub(a, c)  # w = 1: the guided target is the plain one
    one = flow_matching_loss(stub, path, x=x, t=t, noise=noise, self_condition=True, scale=torch.ones(3))
    assert torch.allclose(one, ((c - target) ** 2).mean(), rtol=1e-5)
    stub = Stub(a, c)  # and without scale tokens the self-conditioned loss is the plain one too
    assert torch.allclose(flow_matching_loss(stub, path, x=x, t=t, noise=noise, self_condition=True), one, rtol=1e-6)
    assert stub.calls[0]["scale"] is None and stub.calls[1]["scale"] is None


def test_the_guided_target_on_a_real_scale_token_dit_trains_the_scale_path():
    net = scale_dit().train()
    x, noise = _randn(2, MAX_LEN, LATENT_DIM, seed=1), _randn(2, MAX_LEN, LATENT_DIM, seed=2)
    loss = flow_matching_loss(net, LinearPath(), x=x, t=torch.tensor([0.3, 0.6]), noise=noise, self_condition=True,
                              scale=torch.tensor([0.5, 4.0]))
    assert torch.isfinite(loss)
    loss.backward()
    assert net.scale_base.grad.abs().sum() > 0 and net.scale_mlp[0].weight.grad.abs().sum() > 0


def test_a_flow_training_step_draws_one_trained_scale_per_row(tmp_path, cache_dir):
    module = build_module(compose_config("train", tiny_train_overrides(tmp_path, cache_dir) + [
        "backbone.self_condition=true", "module.self_cond_prob=0.999", "backbone.scale_tokens=2",
        "backbone.scale_range=[1.0,3.0]"]), vocab_size=50, seq_len=32)
    backbone = module.net["backbone"]
    assert module.scale_tokens == 2 and backbone.scale_range == (1.0, 3.0)
    _fill(backbone, 4).train()
    calls = _spy(backbone)
    torch.manual_seed(0)
    loss = module.training_step(torch.randint(0, 50, (6, 32), generator=torch.Generator().manual_seed(0)), 0)
    assert len(calls) == 2  # the self-conditioning coin came up: first pass, trained pass
    (_, first), (_, second) = calls
    assert first.shape == (6,) and torch.equal(first, second)  # the same scale in both passes
    assert (first >= 1.0).all() and (first <= 3.0).all() and first.unique().numel() == 6
    loss.backward()
    assert backbone.scale_base.grad.abs().sum() > 0 and backbone.scale_mlp[0].weight.grad.abs().sum() > 0


# --------------------------------------------------------------------------------- 5. the decoder objective
class FixedTime:
    """A "time" whose per-token samples are set, to check the noising formula by hand."""

    def __init__(self, values):
        self.values, self.asked = values, []

    def sample(self, n, *, generator=None, device=None):
        self.asked.append(n)
        return self.values.clone()


def _ae(seed=0, readout="tied"):
    torch.manual_seed(seed)
    return EmbeddingAutoencoder(vocab_size=VOCAB, latent_dim=8, readout_noise=0.1, readout=readout)


def test_decoder_loss_is_the_readout_cross_entropy_on_per_token_noised_latents():
    ae = _ae()
    ids = torch.randint(0, VOCAB, (3, 5), generator=torch.Generator().manual_seed(0))
    lam = torch.linspace(0.05, 0.95, 15)
    time = FixedTime(lam)
    torch.manual_seed(11)
    loss = decoder_loss(ae, ids, time=time, noise_scale=2.0)
    assert time.asked == [15]  # one weight per token
    x = ae.encode(ids)
    torch.manual_seed(11)
    eps = torch.randn_like(x)
    lam_tok = lam.view(3, 5, 1)
    expected = F.cross_entropy(ae.decode(lam_tok * x + (1 - lam_tok) * 2.0 * eps).flatten(0, 1), ids.flatten())
    assert torch.allclose(loss, expected, rtol=1e-5)
    loss.backward()
    grads = [p.grad for p in ae.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads) and sum(g.abs().sum() for g in grads) > 0


@pytest.mark.parametrize("readout", ["tied", "linear"])
def test_decoder_loss_trains_the_readout_and_reads_clean_latents_best(readout):
    ae = _ae(readout=readout)
    ids = torch.randint(0, VOCAB, (8, 12), generator=torch.Generator().manual_seed(1))
    elf = LogitNormalTime(mean=0.8, std=0.8)

    def measured(time):
        torch.manual_seed(123)
        with torch.no_grad():
            return decoder_loss(ae, ids, time=time, noise_scale=1.0).item()

    before = measured(elf)
    assert math.isfinite(before)
    opt = torch.optim.Adam(ae.parameters(), lr=0.05)
    torch.manual_seed(0)
    for _ in range(30):
        loss = decoder_loss(ae, ids, time=elf, noise_scale=1.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = measured(elf)
    assert after < 0.8 * before
    clean, noisy = measured(LogitNormalTime(mean=8.0, std=0.5)), measured(LogitNormalTime(mean=-8.0, std=0.5))
    assert clean < after < noisy and noisy > 0.5 * math.log(VOCAB)  # lambda ~ 0: nearly pure noise


SEQ = 32


def _module(tmp_path, cache_dir, *extra):
    cfg = compose_config("train", tiny_train_overrides(tmp_path, cache_dir) + list(extra))
    return build_module(cfg, vocab_size=50, seq_len=SEQ)


def _training_step(module, monkeypatch, seed):
    decoder_calls, backbone_calls = [], []
    import textflow.training.flow as flow_module

    real = flow_module.decoder_loss
    monkeypatch.setattr(flow_module, "decoder_loss", lambda *a, **k: decoder_calls.append(k) or real(*a, **k))
    handle = module.net["backbone"].register_forward_hook(lambda *a: backbone_calls.append(1))
    batch = torch.randint(0, 50, (4, SEQ), generator=torch.Generator().manual_seed(seed))
    torch.manual_seed(seed)
    loss = module.training_step(batch, 0)
    handle.remove()
    monkeypatch.setattr(flow_module, "decoder_loss", real)
    return loss, decoder_calls, backbone_calls


def test_a_decoder_step_trains_the_autoencoder_and_leaves_the_backbone_alone(tmp_path, cache_dir, monkeypatch):
    module = _module(tmp_path, cache_dir, "module.decoder_prob=0.99", "module.decoder_time.mean=1.5",
                     "module.decoder_time.std=0.5", "path.sigma=2.0")
    assert module.decoder_prob == 0.99 and module.path.prior_scale() == 2.0
    assert (module.decoder_time.mean, module.decoder_time.std) == (1.5, 0.5)
    module.train()
    backbone, ae = module.net["backbone"], module.net["autoencoder"]
    _fill(backbone, 2).train()  # a backbone that would get gradients if it were used
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    ae_before = {k: v.clone() for k, v in ae.state_dict().items()}
    loss, decoder_calls, backbone_calls = _training_step(module, monkeypatch, seed=0)
    assert len(decoder_calls) == 1 and backbone_calls == [] and torch.isfinite(loss)
    assert decoder_calls[0]["time"] is module.decoder_time
    assert decoder_calls[0]["noise_scale"] == 2.0  # the path's prior scale sigma_0
    loss.backward()
    assert all(p.grad is None for p in backbone.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in ae.parameters())
    opt = torch.optim.AdamW(module.trained_parameters(), lr=0.1, weight_decay=0.1)
    opt.step()
    assert all(torch.equal(v, before[k]) for k, v in backbone.state_dict().items())  # bitwise unchanged
    assert any(not torch.equal(v, ae_before[k]) for k, v in ae.state_dict().items())

    flow = _module(tmp_path, cache_dir)  # the control: a flow step does reach the backbone
    flow.train()
    _fill(flow.net["backbone"], 2).train()
    loss, decoder_calls, backbone_calls = _training_step(flow, monkeypatch, seed=0)
    assert decoder_calls == [] and backbone_calls
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in flow.net["backbone"].parameters())


def test_the_decoder_coin_follows_decoder_prob(tmp_path, cache_dir, monkeypatch):
    module = _module(tmp_path, cache_dir, "module.decoder_prob=0.5")
    kinds = []
    for seed in range(16):
        _, decoder_calls, _ = _training_step(module, monkeypatch, seed=seed)
        kinds.append(bool(decoder_calls))
    assert 2 <= sum(kinds) <= 14  # both kinds of step happen
    again = [bool(_training_step(module, monkeypatch, seed=s)[1]) for s in range(16)]
    assert again == kinds  # drawn from the step's seeded stream


@pytest.mark.parametrize("extra,message", [
    (["autoencoder=ar", "module.decoder_prob=0.5"], "module.decoder_prob=0.5 needs a per-token readout"),
    (["module.decoder_prob=1"], "module.decoder_prob=1 is invalid"),
    (["module.decoder_prob=1.0"], "module.decoder_prob=1.0 is invalid"),
    (["module.decoder_prob=-0.1"], "module.decoder_prob=-0.1 is invalid"),
    (["module.decoder_time.std=0"], "time.std=0 is invalid"),
    (["backbone.scale_tokens=2"], "backbone.scale_tokens=2 needs backbone.self_condition=true"),
    (["backbone.self_condition=true", "module.self_cond_prob=0.5", "backbone.scale_tokens=2",
      "backbone.scale_range=[5,0.5]"], "backbone.scale_range=[5, 0.5] is invalid"),
])
def test_bad_training_options_are_refused_in_one_line(extra, message, tmp_path, cache_dir):
    with pytest.raises(Exception) as info:
        _module(tmp_path, cache_dir, *extra)
    err = user_error(info.value)  # what train.py prints, in one line
    assert isinstance(err, ConfigError) and message in str(err) and "\n" not in str(err)


def test_decoder_prob_is_allowed_with_a_parallel_readout_up_to_below_one(tmp_path, cache_dir):
    assert _module(tmp_path, cache_dir, "module.decoder_prob=0.99").decoder_prob == 0.99
    assert _module(tmp_path, cache_dir).decoder_prob == 0.0


# ------------------------------------------------------------------------------------ 6. train.py, sample.py
TRAIN = ["backbone.self_condition=true", "module.self_cond_prob=0.5", "backbone.scale_tokens=2",
         "module.decoder_prob=0.5"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cache_dir):
    out = tmp_path_factory.mktemp("scale-decoder-train")
    metrics, objects = train_entry.run(compose_config("train", tiny_train_overrides(out, cache_dir) + TRAIN))
    return {"dir": out, "metrics": metrics, "ckpt": objects["checkpoint"]}


def test_train_with_scale_tokens_and_the_decoder_objective(trained):
    saved = json.loads((trained["dir"] / "train_metrics.json").read_text())
    assert saved["global_step"] == 10
    header, *rows = (trained["dir"] / "csv" / "metrics.csv").read_text().splitlines()
    columns = header.split(",")
    for key in ("train/decoder_loss", "train/flow_loss"):  # both kinds of step ran
        i = columns.index(key)
        values = [float(r.split(",")[i]) for r in rows if len(r.split(",")) > i and r.split(",")[i]]
        assert values and all(math.isfinite(v) for v in values), key
    loaded = load_run(trained["ckpt"])
    module = loaded.module
    assert module.decoder_prob == 0.5 and module.scale_tokens == 2 and module.self_cond_prob == 0.5
    backbone = module.net["backbone"]
    assert backbone.scale_tokens == 2 and backbone.scale_range == (0.5, 5.0)
    raw = torch.load(trained["ckpt"], map_location="cpu", weights_only=True)
    assert "net.backbone.scale_base" in raw["state_dict"] and "ema.module.backbone.scale_base" in raw["state_dict"]
    for key, value in module.state_dict().items():
        assert torch.equal(value, raw["state_dict"][key]), key
    assert loaded.denoiser().scale_range == (0.5, 5.0) and loaded.denoiser().self_conditioned


@pytest.mark.parametrize("sampler,extra", [("sde", []), ("ode", [])])
def test_sample_a_scale_token_checkpoint_in_k_calls(trained, tmp_path, sampler, extra):
    cfg = compose_config("sample", [f"ckpt_path={trained['ckpt']}", f"dirs.output_dir={tmp_path}", "num_samples=2",
                                    "batch_size=2", f"sampler={sampler}", "sampler.steps=3", "sampler.sc_scale=3",
                                    "evaluation=diversity", *extra])
    metrics, _ = sample_entry.run(cfg)
    assert metrics["nfe"] == 3  # K, where a two-pass model takes 2 K
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["sampler"]["sc_scale"] == 3.0 and saved["nfe"] == 3
    rows = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(len(r["token_ids"]) == 32 for r in rows)


def test_sampling_a_scale_token_checkpoint_outside_its_range_is_refused(trained, tmp_path):
    cfg = compose_config("sample", [f"ckpt_path={trained['ckpt']}", f"dirs.output_dir={tmp_path}", "num_samples=2",
                                    "batch_size=2", "sampler=ode", "sampler.steps=2", "sampler.sc_scale=8",
                                    "evaluation=diversity"])
    with pytest.raises(Exception) as info:
        sample_entry.run(cfg)
    err = user_error(info.value)
    assert isinstance(err, ConfigError) and "sampler.sc_scale=8 is outside [0.5, 5]" in str(err)


# ------------------------------------------------------------------ scale ranges that could not train
def test_a_scale_range_without_one_is_refused_before_training_or_trains(tmp_path, cache_dir, monkeypatch):
    from textflow.training import LatentFlowModule

    steps, real = [], LatentFlowModule.training_step

    def counted(self, *args, **kwargs):
        steps.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(LatentFlowModule, "training_step", counted)
    cfg = compose_config("train", tiny_train_overrides(tmp_path, cache_dir) + [
        "backbone.self_condition=true", "module.self_cond_prob=0.5", "backbone.scale_tokens=2",
        "backbone.scale_range=[2,5]"])
    try:
        train_entry.run(cfg)
    except Exception as err:  # noqa: BLE001 - acceptable only as a one-line refusal before any step
        assert isinstance(user_error(err), ConfigError) and not steps, (
            f"refused after {len(steps)} training steps: {user_error(err) or err}")


def test_every_scale_an_accepted_range_admits_gives_a_finite_target():
    try:
        net = scale_dit(scale_range=(0.0, 5.0)).train()
    except ConfigError:
        return  # refusing lo = 0 is a fix too
    x, noise = _randn(2, MAX_LEN, LATENT_DIM, seed=1), _randn(2, MAX_LEN, LATENT_DIM, seed=2)
    loss = flow_matching_loss(net, LinearPath(), x=x, t=torch.tensor([0.3, 0.6]), noise=noise, self_condition=True,
                              scale=torch.tensor([0.0, 1e-3]))
    assert torch.isfinite(loss) and loss < 1e3, loss
