"""Oracle roll-in (science.md §4): noise real latents exactly to the time at which a K-step sampler
takes its terminal step, call the network once, decode, and count the tokens that differ from the
clean decode."""

from __future__ import annotations

import torch
from torch import Tensor

from textflow.timegrids import UniformTime


def terminal_time(steps: int, time=None) -> float:
    """The time of the last network call of a K-step sampler on ``time``'s grid (uniform default)."""
    grid = (time or UniformTime()).grid(steps)
    return float(grid[-2])


@torch.no_grad()
def terminal_residual(denoiser, x: Tensor, t: float, *, generator: torch.Generator | None = None) -> Tensor:
    """``x_hat(z_t, t) - x`` for ``z_t`` drawn exactly from the path at time ``t``."""
    noise = torch.randn(x.shape, generator=generator).to(x)
    tt = torch.full((x.shape[0],), float(t), device=x.device)
    z = denoiser.path.sample(x, tt, noise).z
    return denoiser(z, tt) - x


@torch.no_grad()
def oracle_flip_rate(denoiser, x: Tensor, t: float, *, generator: torch.Generator | None = None) -> float:
    """Fraction of tokens whose decode after one network call at ``t`` differs from the clean decode."""
    clean = denoiser.readout(x).argmax(-1)
    x_hat = x + terminal_residual(denoiser, x, t, generator=generator)
    return float((denoiser.readout(x_hat).argmax(-1) != clean).float().mean())
