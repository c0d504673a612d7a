"""``sampler=elf`` against a plain loop written from ELF's equations (docs/elf.md), on a toy
self-conditioned denoiser, with and without SC-CFG, given the same noise."""

from __future__ import annotations

import pytest
import torch

from textflow.errors import ConfigError
from textflow.paths import LinearPath, VPPath
from textflow.samplers import Sampler


class ToySelfConditioned:
    """``x̂ = tanh(a z + b x̂_prev + c t)``: a smooth toy with a self-conditioning input."""

    self_conditioned = True

    def __init__(self, path=None):
        self.path, self.nfe = path or LinearPath(), 0

    def __call__(self, z, t, x_prev=None):
        self.nfe += 1
        prev = torch.zeros_like(z) if x_prev is None else x_prev
        tt = t.view(-1, *([1] * (z.dim() - 1))) if t.dim() == 1 else t.unsqueeze(-1)
        return torch.tanh(0.9 * z + 0.5 * prev + 0.3 * tt)


def reference_elf(den, z, *, steps, gamma, t_eps, mean, std, sc_scale, generator):
    """ELF's sampler as a plain loop: grid, churn noise on every non-final step, clamped velocity on
    every step, SC-CFG with the previous call's guided x̂."""
    grid = torch.cat([torch.zeros(1), torch.sigmoid(mean + std * torch.randn(steps - 1, generator=generator)).sort()
                      .values, torch.ones(1)])
    prev, sigma = torch.zeros_like(z), den.path.sigma
    for i in range(steps):
        t, t_next = float(grid[i]), float(grid[i + 1])
        if i < steps - 1:
            alpha = min(max(1 - gamma * (t_next - t), 0.0), 1.0)
            eps = torch.randn(z.shape, generator=generator)
            z, t = alpha * z + (1 - alpha) * sigma * eps, alpha * t
        tb = torch.full((z.shape[0],), t)
        if sc_scale == 1:
            x_hat = den(z, tb, prev)
        elif sc_scale == 0:
            x_hat = den(z, tb, None)
        else:
            uncond = den(z, tb, None)
            x_hat = uncond + sc_scale * (den(z, tb, prev) - uncond)
        prev = x_hat
        z = z + (t_next - t) * (x_hat - z) / max(1 - t, t_eps)
    return z


@pytest.mark.parametrize("sc_scale,gamma", [(1.0, 1.0), (3.0, 1.0), (0.0, 0.5), (3.0, 0.0)])
def test_elf_matches_a_loop_written_from_the_equations(sc_scale, gamma):
    steps, z0 = 5, torch.randn(3, 4, 2, generator=torch.Generator().manual_seed(1))
    want = reference_elf(ToySelfConditioned(), z0.clone(), steps=steps, gamma=gamma, t_eps=0.05, mean=0.8, std=0.8,
                         sc_scale=sc_scale, generator=torch.Generator().manual_seed(7))
    den = ToySelfConditioned()
    sampler = Sampler(name="elf", steps=steps, gamma=gamma, sc_scale=sc_scale)
    out = sampler(den, z0.clone(), generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(out.latents, want, rtol=1e-6, atol=1e-6)
    assert out.nfe == (2 * steps if sc_scale not in (0.0, 1.0) else steps)


def test_elf_draws_noise_at_gamma_zero_and_redraws_its_grid_per_batch():
    den, z0 = ToySelfConditioned(), torch.zeros(2, 3, 2)
    g = torch.Generator().manual_seed(0)
    first = Sampler(name="elf", steps=4, gamma=0.0)(den, z0, generator=g)
    second = Sampler(name="elf", steps=4, gamma=0.0)(den, z0, generator=g)  # the same generator, drawn on
    assert not torch.equal(first.time_grid, second.time_grid)
    fixed = Sampler(name="elf", steps=4, gamma=0.0, redraw_grid=False)(den, z0, generator=torch.Generator())
    assert torch.equal(fixed.time_grid, torch.linspace(0, 1, 5))


@pytest.mark.parametrize("knobs,needle", [({"t_eps": 0.0}, "sampler.t_eps=0.0"), ({"gamma": float("nan")}, "gamma"),
                                          ({"grid_std": -1.0}, "sampler.grid_std=-1.0")])
def test_elf_knobs_are_checked_in_one_line(knobs, needle):
    with pytest.raises(ConfigError, match=needle):
        Sampler(name="elf", steps=4, **knobs)


def test_elf_refuses_a_non_linear_path():
    with pytest.raises(ConfigError, match="linear-path"):
        Sampler(name="elf", steps=2)(ToySelfConditioned(VPPath()), torch.zeros(1, 2, 2),
                                    generator=torch.Generator())
