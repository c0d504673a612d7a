"""ELF-exact sampling (``sampler=elf``): ELF's own numerics where textflow's ``sde`` deliberately differs
(docs/elf.md has the row-by-row table and the reasons).

Per step ``i`` of a K-step grid, ``h = t' - t``:

* the grid is ELF's random logit-normal grid, redrawn for every batch: K - 1 sorted draws
  ``sigmoid(grid_mean + grid_std * n)``, ``n ~ N(0, 1)``, between the endpoints 0 and 1, drawn from the
  batch's generator (the first per-sample generator) before any churn noise (``redraw_grid=false``
  uses the grid of ``sampler.time`` instead);
* on every step but the last, fresh noise is drawn even at ``gamma = 0``;
  ``alpha = clip(1 - gamma h, 0, 1)``, ``t_b = alpha t``, ``z_b = alpha z + (1 - alpha) sigma eps``
  (the linear path's re-noising, :meth:`textflow.paths.LinearPath.renoise`);
* ``x_hat = f(z_b, t_b)``, ``v = (x_hat - z_b) / max(1 - t_b, t_eps)`` with ELF's ``t_eps = 0.05``,
  and ``z' = z_b + (t' - t_b) v`` on EVERY step, the last one included (textflow's samplers return
  ``x_hat`` at the last step instead).

Self-conditioning and SC-CFG come from :class:`textflow.samplers.Sampler` (``sampler.sc_scale``), as for
every sampler. NFE = K (2K with a guidance scale other than 0 or 1). Only the linear path is ELF's.
"""

from __future__ import annotations

import torch

from textflow.checks import require_number
from textflow.errors import ConfigError
from textflow.paths import LinearPath, expand_time
from textflow.samplers.registry import register_sampler
from textflow.samplers.steps import batch_time, emit
from textflow.types import SampleOutput


def check_elf(*, gamma: float = 1.0, t_eps: float = 0.05, grid_mean: float = 0.8, grid_std: float = 0.8,
              redraw_grid: bool = True) -> None:
    require_number("sampler.gamma", gamma, low=0, hint=" (0 = no churn; noise is still drawn, as ELF does)")
    require_number("sampler.t_eps", t_eps, low=0, high=1, low_open=True, hint=" (ELF: 0.05)")
    require_number("sampler.grid_mean", grid_mean)
    require_number("sampler.grid_std", grid_std, low=0, low_open=True)
    if not isinstance(redraw_grid, bool):
        raise ConfigError(f"sampler.redraw_grid={redraw_grid!r} is invalid; it must be true or false")


def elf_grid(steps: int, *, mean: float, std: float, generator) -> torch.Tensor:
    """ELF's random logit-normal grid: 0, K - 1 sorted ``sigmoid(mean + std n)`` draws, 1 (float32)."""
    g = generator[0] if isinstance(generator, (list, tuple)) else generator
    n = torch.randn(steps - 1, generator=g, device=getattr(g, "device", None), dtype=torch.float32).cpu()
    inner = torch.sigmoid(mean + std * n).sort().values
    return torch.cat([torch.zeros(1), inner, torch.ones(1)])


@register_sampler("elf", check=check_elf)
@torch.no_grad()
def sample_elf(denoiser, x_init, time_grid, *, generator=None, callback=None, gamma: float = 1.0,
               t_eps: float = 0.05, grid_mean: float = 0.8, grid_std: float = 0.8,
               redraw_grid: bool = True) -> SampleOutput:
    """ELF's churned Euler sampler; see the module docstring for the exact update."""
    from textflow.noise import randn

    check_elf(gamma=gamma, t_eps=t_eps, grid_mean=grid_mean, grid_std=grid_std, redraw_grid=redraw_grid)
    path = denoiser.path
    if not isinstance(path, LinearPath):
        raise ConfigError(f"sampler=elf reproduces ELF's linear-path numerics; this model's path is "
                          f"{type(path).__name__} (use sampler=sde)")
    k = len(time_grid) - 1
    grid = elf_grid(k, mean=grid_mean, std=grid_std, generator=generator) if redraw_grid else time_grid.cpu()
    times = grid.tolist()  # host floats: no device sync inside the loop
    grid = grid.to(x_init.device)
    nfe_start, z = denoiser.nfe, x_init
    for i in range(k):
        t, t_next = batch_time(times[i], z), batch_time(times[i + 1], z)
        alpha = 1.0
        if i < k - 1:
            alpha = min(max(1.0 - gamma * (times[i + 1] - times[i]), 0.0), 1.0)
            noise = randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
            z_b, t_b = path.renoise(z, t, alpha, noise)
        else:
            z_b, t_b = z, t
        x_hat = denoiser(z_b, t_b)
        v = (x_hat - z_b) / (1 - expand_time(t_b, z_b)).clamp_min(t_eps)
        z = z_b + expand_time(t_next - t_b, z_b) * v
        emit(callback, denoiser, i, t_b, t_next, z_b, x_hat, churn_alpha=alpha)
    return SampleOutput(latents=z, nfe=denoiser.nfe - nfe_start, time_grid=grid)
