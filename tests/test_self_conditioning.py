"""Self-conditioning and SC-CFG (docs/samplers.md, "Self-conditioning and SC-CFG"): the wrapper on an
analytic toy, every sampler on a self-conditioned tiny DiT, seeding and batch invariance, the refusals,
and train.py / sample.py / stage=distill end to end."""

from __future__ import annotations

import json

import pytest
import torch
from hydra.utils import instantiate

import sample as sample_entry
import train as train_entry
from conftest import CONF, compose_config, tiny_train_overrides
from test_samplers import GaussianDenoiser
from textflow.autoencoders import EmbeddingAutoencoder
from textflow.backbones import DiT
from textflow.checkpoint import build_module, load_run
from textflow.cli import user_error
from textflow.denoiser import FlowDenoiser
from textflow.errors import ConfigError
from textflow.guidance import SelfConditioned
from textflow.paths import LinearPath
from textflow.samplers import SAMPLERS, Sampler
from textflow.sampling.generate import generate
from textflow.objectives.distillation import two_step_target

LATENT_DIM, VOCAB = 8, 48


class ToySC:
    """An analytic self-conditioned denoiser: ``x_hat = a z + b x_prev`` (x_prev None = 0); records calls."""

    self_conditioned = True

    def __init__(self, a: float = 0.5, b: float = 0.25):
        self.path, self.a, self.b, self.nfe = LinearPath(), a, b, 0
        self.seen: list = []  # x_prev of every call
        self.outs: list = []  # x_hat of every call
        self.table = torch.linspace(-1, 1, 5)

    def __call__(self, z, t, x_prev=None):
        self.nfe += 1
        self.seen.append(None if x_prev is None else x_prev.clone())
        out = self.a * z + (0.0 if x_prev is None else self.b * x_prev)
        self.outs.append(out.clone())
        return out

    def readout(self, x):
        return -(x - self.table) ** 2  # (B, L, V) for D = 1

    def embed(self, ids):
        return self.table[ids].unsqueeze(-1)


def _x0(shape=(3, 6, 1), seed=1):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------- the wrapper, analytic
def test_plain_self_conditioning_feeds_each_call_the_previous_x_hat():
    toy = ToySC()
    out = Sampler(name="ode", steps=4)(toy, _x0())
    assert out.nfe == toy.nfe == 4  # w = 1: one call per step
    assert toy.seen[0] is None  # first step: zeros
    for i in range(1, 4):
        assert torch.equal(toy.seen[i], toy.outs[i - 1])


def test_unconditional_scale_zero_never_passes_an_estimate():
    toy = ToySC()
    out = Sampler(name="sde", steps=4, gamma=1.5, sc_scale=0)(toy, _x0(), generator=torch.Generator().manual_seed(0))
    assert out.nfe == toy.nfe == 4 and all(s is None for s in toy.seen)


@pytest.mark.parametrize("w", [3.0, 0.5])
def test_sc_cfg_two_calls_per_step_and_the_guided_x_hat_is_remembered(w):
    toy = ToySC()
    steps = 4
    out = Sampler(name="ode", steps=steps, sc_scale=w)(toy, _x0())
    assert out.nfe == toy.nfe == 2 * steps  # NFE stays honest: two network calls per guided step
    guided_prev = None
    for i in range(steps):
        uncond_in, cond_in = toy.seen[2 * i], toy.seen[2 * i + 1]
        assert uncond_in is None  # the unconditional branch feeds zeros
        assert (cond_in is None) if guided_prev is None else torch.equal(cond_in, guided_prev)
        u, c = toy.outs[2 * i], toy.outs[2 * i + 1]
        guided_prev = u + w * (c - u)
    assert torch.allclose(out.latents, guided_prev)  # the last step returns the guided x_hat


def test_sc_cfg_formula_on_one_call():
    toy = ToySC(a=0.7, b=-0.4)
    z, prev = _x0(seed=2), _x0(seed=3)
    t = torch.full((3,), 0.3)
    wrapped = SelfConditioned(toy, scale=2.5, x_prev=prev)
    x_hat = wrapped(z, t)
    uncond, cond = 0.7 * z, 0.7 * z - 0.4 * prev
    assert torch.allclose(x_hat, uncond + 2.5 * (cond - uncond))
    assert wrapped.nfe == 2 and torch.equal(wrapped.x_prev, x_hat)
    assert wrapped.path is toy.path and wrapped.readout == toy.readout  # forwarded attributes
    wrapped.nfe = 0
    assert toy.nfe == 0
    with pytest.raises(ValueError, match="one wrapper per batch"):
        wrapped(z[:2], t[:2])
    wrapped.reset()
    assert torch.equal(wrapped(z[:2], t[:2]), 0.7 * z[:2])  # first step again: cond == uncond


def test_heun_and_commit_carry_the_estimate_through_every_call():
    toy = ToySC()
    Sampler(name="heun", steps=3)(toy, _x0())
    assert toy.nfe == 5 and toy.seen[0] is None
    assert all(torch.equal(toy.seen[i], toy.outs[i - 1]) for i in range(1, 5))
    toy = ToySC()
    out = Sampler(name="commit", steps=3, rule="schedule", gamma=1.5)(toy, _x0(),
                                                                     generator=torch.Generator().manual_seed(0))
    assert out.nfe == 3 and all(torch.equal(toy.seen[i], toy.outs[i - 1]) for i in range(1, 3))


def test_distillation_target_with_a_self_conditioned_teacher_chains_its_sub_steps():
    toy = ToySC()
    z_s, prev = _x0(seed=4), _x0(seed=5)
    t_s, t_t = torch.tensor([0.0, 0.25, 0.5]), torch.tensor([0.25, 0.5, 0.75])
    two_step_target(SelfConditioned(toy, x_prev=prev), z_s, t_s, t_t)
    assert toy.nfe == 2 and torch.equal(toy.seen[0], prev) and torch.equal(toy.seen[1], toy.outs[0])


# ----------------------------------------------------------------------------------- knobs and refusals
def test_sc_scale_is_refused_on_a_plain_model_in_one_line():
    plain = GaussianDenoiser(LinearPath())
    message = r"^sampler\.sc_scale=3 needs a model trained with self-conditioning \(module\.self_cond_prob > 0\)$"
    with pytest.raises(ConfigError, match=message):
        Sampler(name="ode", steps=2, sc_scale=3)(plain, _x0())

    class Loaded:  # what Sampler.denoiser asks of a loaded checkpoint
        def denoiser(self, *, use_ema=True):
            return plain

    with pytest.raises(ConfigError, match=message):
        Sampler(name="sde", steps=2, sc_scale=3).denoiser(Loaded())
    assert Sampler(name="ode", steps=2).denoiser(Loaded()) is plain  # sc_scale = 1 is every model's default
    out = Sampler(name="ode", steps=2)(plain, _x0())  # and leaves a plain model alone
    assert out.nfe == 2


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), True, "3"])
def test_bad_sc_scale_is_named(bad):
    with pytest.raises(ConfigError, match="sampler.sc_scale="):
        Sampler(name="ode", steps=2, sc_scale=bad)


def test_labels_and_settings_mention_sc_scale_only_when_it_is_not_one():
    assert Sampler(name="sde", steps=4, gamma=1.5).label == "sde_gamma1.5_K4"
    assert "sc_scale" not in Sampler(name="sde", steps=4, gamma=1.5, sc_scale=1.0).describe()
    guided = Sampler(name="sde", steps=4, gamma=1.5, sc_scale=3)
    assert guided.label == "sde_gamma1.5_sc_scale3.0_K4" and guided.describe()["sc_scale"] == 3.0
    assert guided.with_steps(8).sc_scale == 3.0


def test_every_sampler_config_defaults_to_plain_self_conditioning(tmp_path):
    for f in sorted((CONF / "sampler").glob("*.yaml")):
        cfg = compose_config("sample", ["ckpt_path=x.ckpt", f"sampler={f.stem}", f"dirs.output_dir={tmp_path}"])
        assert instantiate(cfg.sampler).sc_scale == 1.0, f.stem


# -------------------------------------------------------------------------- a self-conditioned tiny DiT
def _fill(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random weights everywhere (adaLN-Zero would make a fresh DiT output exactly zero)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            draw = torch.randn(p.shape, generator=g)
            p.copy_(draw / p.shape[-1] ** 0.5 if p.dim() >= 2 else 1.0 + 0.1 * draw if p.dim() == 0 else 0.1 * draw)
    return module.eval()


def sc_denoiser(self_condition: bool = True) -> FlowDenoiser:
    backbone = _fill(DiT(latent_dim=LATENT_DIM, max_len=16, width=32, depth=2, heads=2, mlp_ratio=2.0,
                         self_condition=self_condition), 0)
    ae = _fill(EmbeddingAutoencoder(vocab_size=VOCAB, latent_dim=LATENT_DIM, scale=1.0, readout_noise=0.2,
                                    readout="tied"), 1)
    return FlowDenoiser(backbone=backbone, path=LinearPath(), autoencoder=ae)


def test_dit_self_condition_reads_x_prev_and_keeps_its_state_dict_keys():
    plain = DiT(latent_dim=4, max_len=8, width=16, depth=1, heads=2)
    sc = DiT(latent_dim=4, max_len=8, width=16, depth=1, heads=2, self_condition=True)
    assert list(plain.state_dict()) == list(sc.state_dict())
    assert plain.proj_in.in_features == 4 and sc.proj_in.in_features == 8
    den = sc_denoiser()
    z, t = _x0((2, 8, LATENT_DIM)), torch.full((2,), 0.4)
    with torch.no_grad():
        zero = den(z, t)
        assert torch.equal(zero, den(z, t, torch.zeros_like(z)))  # None means zeros
        assert not torch.allclose(zero, den(z, t, _x0((2, 8, LATENT_DIM), seed=9)))
    assert den.self_conditioned and not sc_denoiser(False).self_conditioned
    with pytest.raises(ValueError, match="not self-conditioned"):
        sc_denoiser(False)(z, t, z)


KNOBS = {"sde": {"gamma": 1.5}, "commit": {"rule": "schedule", "gamma": 1.5}}


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_every_sampler_runs_self_conditioned_and_guidance_doubles_its_nfe(name):
    den = sc_denoiser()
    x0 = _x0((2, 8, LATENT_DIM))
    if SAMPLERS[name].weights.name == "flow_map":  # flow maps of self-conditioned models are not built
        with pytest.raises(ConfigError, match="sampler=flow_map needs a flow-map student"):
            Sampler(name=name, steps=3)(den, x0)
        return
    plain = Sampler(name=name, steps=3, **KNOBS.get(name, {}))(den, x0, generator=torch.Generator().manual_seed(0))
    guided = Sampler(name=name, steps=3, sc_scale=3, **KNOBS.get(name, {}))(
        den, x0, generator=torch.Generator().manual_seed(0))
    assert plain.latents.shape == guided.latents.shape == x0.shape
    assert torch.isfinite(plain.latents).all() and torch.isfinite(guided.latents).all()
    assert guided.nfe == 2 * plain.nfe and plain.nfe == (5 if name == "heun" else 3)
    assert not torch.allclose(plain.latents, guided.latents)


@pytest.mark.parametrize("w", [1.0, 3.0])
def test_sde_gamma_zero_equals_ode_bit_for_bit_with_self_conditioning(w):
    den = sc_denoiser()
    x0 = _x0((3, 8, LATENT_DIM))
    ode = Sampler(name="ode", steps=5, sc_scale=w)(den, x0)
    gen = torch.Generator().manual_seed(5)
    state = gen.get_state().clone()
    sde = Sampler(name="sde", steps=5, gamma=0.0, sc_scale=w)(den, x0, generator=gen)
    assert torch.equal(ode.latents, sde.latents) and ode.nfe == sde.nfe
    assert torch.equal(gen.get_state(), state)


@pytest.mark.parametrize("w", [1.0, 3.0])
def test_self_conditioned_sampling_is_seeded_and_batch_size_invariant(w):
    den = sc_denoiser()
    sampler = Sampler(name="sde", steps=4, gamma=1.5, sc_scale=w)
    runs = {bs: generate(den, sampler, num_samples=4, seq_len=8, seed=7, batch_size=bs) for bs in (4, 3, 1)}
    for bs in (3, 1):
        assert torch.equal(runs[bs].ids, runs[4].ids)
        assert torch.allclose(runs[bs].latents, runs[4].latents, atol=1e-5)
    assert runs[4].nfe == (8 if w == 3.0 else 4)
    again = generate(den, sampler, num_samples=4, seq_len=8, seed=7, batch_size=2)
    other = generate(den, sampler, num_samples=4, seq_len=8, seed=8, batch_size=2)
    assert torch.equal(again.ids, runs[4].ids) and not torch.allclose(other.latents, runs[4].latents)


# ------------------------------------------------------------------------------------------------ training
SC_TRAIN = ["backbone.self_condition=true", "module.self_cond_prob=0.5"]


def test_training_options_must_agree(tmp_path, cache_dir):
    base = tiny_train_overrides(tmp_path, cache_dir)
    for extra, message in (
            (["module.self_cond_prob=0.5"], "module.self_cond_prob=0.5 needs backbone.self_condition=true"),
            (SC_TRAIN[:1], "backbone.self_condition=true needs module.self_cond_prob > 0"),
            (SC_TRAIN[:1] + ["module.self_cond_prob=1.5"], "module.self_cond_prob=1.5 is invalid")):
        with pytest.raises(Exception) as info:
            build_module(compose_config("train", base + extra), vocab_size=50, seq_len=16)
        err = user_error(info.value)  # what train.py prints, in one line
        assert isinstance(err, ConfigError) and str(err).startswith(message) and "\n" not in str(err)


def test_the_first_pass_has_no_gradient_and_feeds_its_x_hat(tmp_path, cache_dir):
    module = build_module(compose_config("train", tiny_train_overrides(tmp_path, cache_dir) + SC_TRAIN),
                          vocab_size=50, seq_len=16)
    backbone = module.net["backbone"]
    _fill(backbone, 3).train()
    calls = []
    backbone.register_forward_hook(lambda m, args, out: calls.append((args[2], torch.is_grad_enabled(), out)))
    x = _x0((2, 16, backbone.latent_dim))
    t, noise = torch.full((2,), 0.5), _x0((2, 16, backbone.latent_dim), seed=2)
    module.flow_loss(module.net, x, t, noise, self_condition=False)
    assert len(calls) == 1 and calls[0][0] is None and calls[0][1]
    calls.clear()
    loss = module.flow_loss(module.net, x, t, noise, self_condition=True)
    (prev, grad1, out1), (x_prev, grad2, _) = calls
    assert prev is None and not grad1 and grad2
    assert torch.equal(x_prev, module.path.to_x_hat(out1.float(), module.path.sample(x, t, noise).z, t))
    loss.backward()
    assert backbone.proj_in.weight.grad[:, backbone.latent_dim:].abs().sum() > 0  # the x_prev half trains


@pytest.fixture(scope="module")
def sc_trained(tmp_path_factory, cache_dir):
    out = tmp_path_factory.mktemp("sc-train")
    metrics, objects = train_entry.run(compose_config("train", tiny_train_overrides(out, cache_dir) + SC_TRAIN))
    return objects["checkpoint"]


def test_train_and_sample_a_self_conditioned_model_with_sc_cfg(sc_trained, tmp_path):
    loaded = load_run(sc_trained)
    assert loaded.module.self_cond_prob == 0.5 and loaded.denoiser().self_conditioned
    cfg = compose_config("sample", [f"ckpt_path={sc_trained}", f"dirs.output_dir={tmp_path}", "num_samples=2",
                                    "batch_size=2", "sampler=sde", "sampler.steps=3", "sampler.sc_scale=3",
                                    "evaluation=diversity"])
    metrics, _ = sample_entry.run(cfg)
    assert metrics["nfe"] == 6  # 2 K
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["sampler"]["sc_scale"] == 3.0 and saved["label"] == "sde_gamma1.5_sc_scale3.0_K3"


def test_distill_a_self_conditioned_teacher(sc_trained, tmp_path, cache_dir):
    out = tmp_path / "distill"
    cfg = compose_config("train", tiny_train_overrides(out, cache_dir) + [
        "stage=distill", f"teacher_ckpt={sc_trained}", "stage.start_steps=4", "stage.min_steps=2",
        "stage.steps_per_round=2", "trainer.max_steps=100", "callbacks.samples=null"])
    _, objects = train_entry.run(cfg)
    raw = torch.load(objects["checkpoint"], map_location="cpu", weights_only=True)
    assert sorted(raw["textflow"]["students"]) == ["2"]
    for w, nfe in (("1", 2), ("3", 4)):
        cfg = compose_config("sample", [f"ckpt_path={objects['checkpoint']}", f"dirs.output_dir={tmp_path / w}",
                                        "sampler=student", "sampler.steps=2", f"sampler.sc_scale={w}",
                                        "num_samples=2", "batch_size=2", "evaluation=diversity"])
        assert sample_entry.run(cfg)[0]["nfe"] == nfe
