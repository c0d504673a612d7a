"""Deterministic probability-flow ODE samplers (docs/samplers.md, ``ode``).

* ``ode``  – explicit Euler: ``z <- z + (t' - t) v(z, t)``; the final step returns ``x_hat``, the
  posterior mean. NFE = K.
* ``heun`` – Heun's second-order method (Karras et al. 2022, Alg. 1 without churn); the final step
  is the Euler/``x_hat`` step. NFE = 2K - 1.
"""

from __future__ import annotations

import torch

from textflow.samplers.registry import register_sampler
from textflow.samplers.steps import batch_time, emit, euler_step, heun_step
from textflow.types import SampleOutput


def _integrate(step, denoiser, x_init, time_grid, callback):
    nfe_start, z = denoiser.nfe, x_init
    k = len(time_grid) - 1
    for i in range(k):
        t, t_next = batch_time(time_grid[i], z), batch_time(time_grid[i + 1], z)
        z_in = z
        z, x_hat = step(denoiser, z, t, t_next, last=i == k - 1)
        emit(callback, denoiser, i, t, t_next, z_in, x_hat)
    return SampleOutput(latents=z, nfe=denoiser.nfe - nfe_start, time_grid=time_grid)


@register_sampler("ode")
@torch.no_grad()
def sample_ode(denoiser, x_init, time_grid, *, generator=None, callback=None) -> SampleOutput:
    """Euler probability-flow ODE; ``generator`` is unused (deterministic)."""
    return _integrate(euler_step, denoiser, x_init, time_grid, callback)


@register_sampler("heun")
@torch.no_grad()
def sample_heun(denoiser, x_init, time_grid, *, generator=None, callback=None) -> SampleOutput:
    """Heun probability-flow ODE; ``generator`` is unused (deterministic)."""
    return _integrate(heun_step, denoiser, x_init, time_grid, callback)
