"""Sampler contract tests over the whole registry, with analytic denoisers (docs/architecture.md, testing)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch

from textflow.errors import ConfigError
from textflow.paths import LinearPath, VPPath, expand_time
from textflow.samplers import SAMPLERS, Sampler
from textflow.time.grids import LogitNormalTime, RandomLogitNormalTime, UniformTime
from textflow.types import StepRecord

CONF_SAMPLERS = Path(__file__).resolve().parents[1] / "conf" / "sampler"
KNOBS = {"sde": {"gamma": 1.5}, "adaptive": {"gamma": 1.5, "closeness": "margin"}}


class GaussianDenoiser:
    """Exact posterior mean for data x ~ N(mu, s^2) (independent coordinates) on an affine path."""

    def __init__(self, path, mu: float = 0.7, s: float = 0.5, vocab: int = 5):
        self.path, self.mu, self.s, self.nfe = path, mu, s, 0
        self.table = torch.linspace(-1, 1, vocab).unsqueeze(-1)

    def __call__(self, z, t):
        self.nfe += 1
        tt = expand_time(t, z)
        a, sd = self.path.alpha(tt), self.path.std(tt)
        gain = a * self.s**2 / (a**2 * self.s**2 + sd**2)
        return self.mu + gain * (z - a * self.mu)

    def readout(self, x):
        return -(x - self.table.squeeze(-1)) ** 2  # (B, L, V) for D = 1

    def embed(self, ids):
        return self.table[ids]


class GaussianFlowMap(GaussianDenoiser):
    """The exact probability-flow map of the Gaussian toy: marginals N(a mu, a^2 s^2 + std^2) per
    coordinate, and the flow is the monotone map between them; returns the jump's ``x_hat``."""

    jumps = True

    def _moments(self, t):
        a, sd = self.path.alpha(t), self.path.std(t)
        return a * self.mu, (a**2 * self.s**2 + sd**2).sqrt()

    def __call__(self, z, t, t_next=None):
        if t_next is None:
            return super().__call__(z, t)
        self.nfe += 1
        s, u = expand_time(t, z), expand_time(t_next, z)
        (m_s, sd_s), (m_u, sd_u) = self._moments(s), self._moments(u)
        z_u = m_u + sd_u / sd_s * (z - m_s)
        v = (z_u - z) / (u - s)
        return torch.where(u >= 1.0, z_u, self.path.x_hat_for_velocity(v, z, t))


def test_registry_matches_conf_files():
    stems = {p.stem for p in CONF_SAMPLERS.glob("*.yaml")}
    assert stems == set(SAMPLERS), "conf/sampler/*.yaml and the registry must be one to one"


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_signature_is_uniform(name):
    params = inspect.signature(SAMPLERS[name]).parameters
    assert list(params)[:3] == ["denoiser", "x_init", "time_grid"]
    for key in ("generator", "callback"):
        assert params[key].kind is inspect.Parameter.KEYWORD_ONLY


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_contract_shapes_callback_nfe_determinism(name):
    toy = GaussianFlowMap if SAMPLERS[name].weights.name == "flow_map" else GaussianDenoiser
    den = toy(LinearPath())
    sampler = Sampler(name=name, steps=4, **KNOBS.get(name, {}))
    x0 = torch.randn(3, 6, 1, generator=torch.Generator().manual_seed(1))
    records: list[StepRecord] = []
    out = sampler(den, x0, generator=torch.Generator().manual_seed(0), callback=records.append)
    assert out.latents.shape == x0.shape
    assert out.nfe == den.nfe > 0  # NFE is counted in the denoiser
    assert len(records) == 4 and [r.i for r in records] == list(range(4))
    assert records[0].logits().shape == (3, 6, 5)
    again = sampler(toy(LinearPath()), x0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out.latents, again.latents), "same seed must give the same samples"


def test_sde_gamma_zero_equals_ode_bit_for_bit_and_draws_no_noise():
    den = GaussianDenoiser(LinearPath())
    x0 = torch.randn(4, 8, 1, generator=torch.Generator().manual_seed(3))
    ode = Sampler(name="ode", steps=7)(den, x0)
    gen = torch.Generator().manual_seed(5)
    state = gen.get_state().clone()
    sde = Sampler(name="sde", steps=7, gamma=0.0)(den, x0, generator=gen)
    assert torch.equal(ode.latents, sde.latents)
    assert torch.equal(gen.get_state(), state), "gamma = 0 must not draw noise"


def test_sde_draws_noise_and_last_step_is_ode():
    den = GaussianDenoiser(LinearPath())
    x0 = torch.randn(2, 4, 1, generator=torch.Generator().manual_seed(3))
    alphas = []
    Sampler(name="sde", steps=4, gamma=2.0)(den, x0, generator=torch.Generator().manual_seed(0),
                                              callback=lambda r: alphas.append(r.extras["churn_alpha"]))
    assert alphas[-1] == 1.0 and all(a < 1.0 for a in alphas[:-1])
    assert alphas[0] == pytest.approx(1 - 2.0 * 0.25)


# 64 x 1024 numbers a row: at least PARALLEL_ROW_NUMEL, so drawn on threads
@pytest.mark.parametrize("row", [(3, 5), (64, 1024)], ids=["serial", "threaded"])
def test_per_sample_rows_are_each_generators_own_draws(row, monkeypatch):
    """Row i of ``randn`` / ``rand`` with per-sample generators holds exactly what ``torch.randn`` /
    ``torch.rand`` draw from generator i alone, whether the rows are drawn in turn or on parallel threads."""
    from textflow import noise

    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)  # the threaded path even on a 1-thread runner
    for draw, reference in ((noise.randn, torch.randn), (noise.rand, torch.rand)):
        rows = draw((6, *row), generator=noise.per_sample_generators(3, range(6)))
        assert rows.shape == (6, *row)
        for i, g in enumerate(noise.per_sample_generators(3, range(6))):
            assert torch.equal(rows[i], reference(row, generator=g))
    with pytest.raises(ValueError, match="3 per-sample generators for a batch of 6"):
        noise.randn((6, *row), generator=noise.per_sample_generators(3, range(3)))


def test_per_sample_generators_make_samples_batch_invariant():
    from textflow.noise import per_sample_generators, randn

    den = GaussianDenoiser(LinearPath())
    sampler = Sampler(name="sde", steps=5, gamma=1.0)
    full = per_sample_generators(7, range(4))
    x_full = randn((4, 3, 1), generator=full)
    out_full = sampler(den, x_init=x_full, generator=full).latents
    part = per_sample_generators(7, [2, 3])
    x_part = randn((2, 3, 1), generator=part)
    out_part = sampler(den, x_init=x_part, generator=part).latents
    assert torch.allclose(out_full[2:], out_part, atol=1e-6)


@pytest.mark.parametrize("path", [LinearPath(), VPPath(prediction="v")], ids=["linear", "vp"])
@pytest.mark.parametrize("name,steps", [("ode", 200), ("heun", 60)])
def test_many_step_ode_matches_gaussian_data(path, name, steps):
    """Probability-flow ODE transports N(0, prior) to the data law: mean and variance must match."""
    mu, s = 0.7, 0.5
    den = GaussianDenoiser(path, mu=mu, s=s)
    x0 = path.prior_scale() * torch.randn(20000, 1, 1, generator=torch.Generator().manual_seed(0))
    out = Sampler(name=name, steps=steps)(den, x0).latents
    assert out.mean().item() == pytest.approx(mu, abs=0.02)
    assert out.var().item() == pytest.approx(s**2, rel=0.06)


def test_euler_last_step_returns_posterior_mean():
    den = GaussianDenoiser(LinearPath())
    x0 = torch.randn(2, 3, 1, generator=torch.Generator().manual_seed(0))
    records = []
    out = Sampler(name="ode", steps=3)(den, x0, callback=records.append)
    assert torch.equal(out.latents, records[-1].x_hat)


@pytest.mark.parametrize("bad,match", [
    (dict(name="nope"), "sampler='nope' is not a registered sampler; choose one of"),
    (dict(name="sde", gamma=-0.5), "sampler.gamma=-0.5"),
    (dict(name="ode", steps=0), "sampler.steps=0"),
    (dict(name="ode", gamma=1.0), "has no knob 'gamma'"),
])
def test_bad_sampler_settings_are_named(bad, match):
    with pytest.raises(ConfigError, match=match.replace("(", r"\(")):
        Sampler(**bad)


def test_time_grids_are_monotone_with_exact_endpoints():
    for grid in (UniformTime().grid(5), LogitNormalTime(mean=0.3, std=1.2).grid(5),
                 RandomLogitNormalTime(seed=3).grid(5)):
        assert grid[0] == 0 and grid[-1] == 1 and len(grid) == 6
        assert torch.all(grid[1:] > grid[:-1])
    assert torch.equal(RandomLogitNormalTime(seed=3).grid(8), RandomLogitNormalTime(seed=3).grid(8))
    assert not torch.equal(RandomLogitNormalTime(seed=3).grid(8), RandomLogitNormalTime(seed=4).grid(8))
    assert torch.equal(UniformTime().grid(1), torch.tensor([0.0, 1.0]))


def _x0(seed=3, shape=(4, 8, 1)):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("gamma", [0.0, 1.5])
def test_commit_that_never_fires_equals_its_base_sampler_bit_for_bit(gamma):
    den = GaussianDenoiser(LinearPath())
    base = Sampler(name="sde", steps=6, gamma=gamma)(den, _x0(), generator=torch.Generator().manual_seed(9))
    out = Sampler(name="commit", steps=6, rule="confidence", threshold=1.0, gamma=gamma)(
        den, _x0(), generator=torch.Generator().manual_seed(9))
    assert torch.equal(out.latents, base.latents)
    assert torch.all(out.committed_step == -1)
    assert torch.equal(out.tokens, den.readout(base.latents).argmax(-1))


def test_commit_everything_at_step_zero_equals_decoding_the_first_x_hat():
    den = GaussianDenoiser(LinearPath())
    first = []
    out = Sampler(name="commit", steps=5, rule="confidence", threshold=0.0)(
        den, _x0(), callback=lambda r: first.append(r.x_hat) if r.i == 0 else None)
    assert torch.all(out.committed_step == 0)
    assert torch.equal(out.tokens, den.readout(first[0]).argmax(-1))
    assert torch.equal(out.latents, den.embed(out.tokens))  # held at the clean latents


def test_commit_schedule_commits_everything_by_the_end_in_quota_steps():
    den = GaussianDenoiser(LinearPath())
    counts = []
    out = Sampler(name="commit", steps=4, rule="schedule")(
        den, _x0(shape=(3, 10, 1)), callback=lambda r: counts.append(r.extras["committed"].sum(1)))
    assert torch.all(out.committed_step >= 0)
    assert [int(c[0]) for c in counts] == [3, 5, 8, 10]  # ceil(10 (i + 1) / 4)


def test_committed_positions_are_held_at_time_one():
    seen = []

    class Spy(GaussianDenoiser):
        def __call__(self, z, t):
            seen.append(t.clone())
            return super().__call__(z, t)

    spy = Spy(LinearPath())
    out = Sampler(name="commit", steps=4, rule="schedule")(spy, _x0(shape=(2, 8, 1)))
    assert seen[0].dim() == 1  # nothing committed yet: per-sequence time
    later = seen[2]
    held = out.committed_step < 2
    assert later.shape == (2, 8) and torch.all(later[held] == 1.0) and torch.all(later[~held] < 1.0)


@pytest.mark.parametrize("gamma", [0.0, 0.7, 1.5, 20.0])
def test_sde_equals_an_independent_loop_written_from_equations(gamma):
    from textflow.bench.peer import reference_sde
    from textflow.noise import per_sample_generators

    den = GaussianDenoiser(LinearPath(sigma=0.8))
    x0 = torch.randn(3, 5, 1, generator=torch.Generator().manual_seed(4))
    sampler = Sampler(name="sde", steps=6, gamma=gamma)
    ours = sampler(den, x0, generator=per_sample_generators(2, range(3))).latents
    ref = reference_sde(den, x0, sampler.time_grid(), gamma, per_sample_generators(2, range(3)))
    assert torch.allclose(ours, ref, atol=1e-6)


def test_every_sampler_resolves_the_weights_it_runs():
    """``Sampler.denoiser(loaded)`` asks the registered weights provider: the model's denoiser for every
    sampler but ``student``, whose provider swaps in the backbone distilled for its K and refuses other K,
    and ``flow_map`` (tests/test_flow_map.py)."""
    import types

    from textflow.errors import CheckpointError

    class Net(torch.nn.Module):
        def __init__(self, value):
            super().__init__()
            self.w = torch.nn.Parameter(torch.full((2,), float(value)))

    made = []

    def model_denoiser(use_ema=True):
        den = types.SimpleNamespace(backbone=Net(0.0), autoencoder=Net(0.0), path=None, use_ema=use_ema)
        made.append(den)
        return den

    loaded = types.SimpleNamespace(denoiser=model_denoiser, path="run/distilled.ckpt",
                                   info={"students": {"2": {"w": torch.full((2,), 7.0)}}})
    for name in sorted(set(SAMPLERS) - {"student", "flow_map"}):
        assert Sampler(name=name, steps=2).denoiser(loaded, use_ema=False) is made[-1]
        assert Sampler(name=name, steps=2).weights == "model" and made[-1].use_ema is False
    student = Sampler(name="student", steps=2)
    assert student.weights == "student"
    assert torch.equal(student.denoiser(loaded).backbone.w, torch.full((2,), 7.0))
    assert torch.equal(made[-1].autoencoder.w, torch.zeros(2))  # only the backbone is the student's
    with pytest.raises(CheckpointError, match=r"no student was distilled for sampler.steps=4 in "
                                              r"'run/distilled.ckpt'; students exist for steps: 2$"):
        student.with_steps(4).denoiser(loaded)
    loaded.info = {}
    with pytest.raises(CheckpointError, match=r"steps: none \(run train.py stage=distill teacher_ckpt=...\)"):
        student.denoiser(loaded)
