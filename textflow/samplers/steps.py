"""Single solver steps shared by the samplers (the k-diffusion ``to_d`` idea: small shared helpers).

All steps take times as (B,) tensors and return ``(z_next, x_hat)``.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor

from textflow.paths import expand_time
from textflow.types import StepRecord


def batch_time(value: Tensor | float, like: Tensor) -> Tensor:
    """A (B,) float32 tensor of time ``value`` on ``like``'s device."""
    return torch.full((like.shape[0],), float(value), device=like.device, dtype=torch.float32)


def emit(callback: Optional[Callable], denoiser, i: int, t: Tensor, t_next: Tensor, z: Tensor, x_hat: Tensor,
         **extras) -> None:
    if callback is not None:
        callback(StepRecord(i=i, t=t, t_next=t_next, z=z, x_hat=x_hat,
                            readout=getattr(denoiser, "readout", None), extras=extras))


def predict(denoiser, z: Tensor, t: Tensor, t_next: Tensor) -> Tensor:
    """The ``x_hat`` of a step from ``t`` to ``t_next``: ``denoiser(z, t)``, or, for a denoiser that
    jumps (``denoiser.jumps``, a flow-map student: :mod:`textflow.samplers.flow_map`), the ``x_hat`` whose
    Euler step lands where its flow map sends ``z`` at ``t_next``."""
    if getattr(denoiser, "jumps", False):
        return denoiser(z, t, t_next=t_next)
    return denoiser(z, t)


def euler_update(denoiser, z: Tensor, x_hat: Tensor, t: Tensor, t_next: Tensor) -> Tensor:
    """``z' = z + (t' - t) v(z, t)`` (docs/samplers.md, ``ode``)."""
    return z + expand_time(t_next - t, z) * denoiser.path.velocity(x_hat, z, t)


def euler_step(denoiser, z: Tensor, t: Tensor, t_next: Tensor, *, last: bool):
    """One Euler step; the last step returns the posterior mean ``x_hat`` itself."""
    x_hat = predict(denoiser, z, t, t_next)
    return (x_hat if last else euler_update(denoiser, z, x_hat, t, t_next)), x_hat


def heun_step(denoiser, z: Tensor, t: Tensor, t_next: Tensor, *, last: bool):
    """Heun (trapezoidal) step, 2 network calls; the last step is the Euler/x_hat step (v is undefined
    at t = 1)."""
    x_hat = denoiser(z, t)
    if last:
        return x_hat, x_hat
    v1 = denoiser.path.velocity(x_hat, z, t)
    z_pred = z + expand_time(t_next - t, z) * v1
    v2 = denoiser.path.velocity(denoiser(z_pred, t_next), z_pred, t_next)
    return z + expand_time(t_next - t, z) * 0.5 * (v1 + v2), x_hat


def churn_euler_step(denoiser, z: Tensor, t: Tensor, t_next: Tensor, *, gamma: float, generator, last: bool,
                     hold: Optional[Tensor] = None, held: Optional[Tensor] = None):
    """One ELF churn step (docs/samplers.md, ``sde``) with optional held positions.

    ``alpha = max(1 - gamma h, 0)``; unless this is the last step or ``alpha == 1`` (then no noise is
    drawn and the step is the plain Euler step), ``z`` is re-noised to ``t_b = alpha t`` by the path.
    Positions where ``hold`` (B, L) is true are pinned to ``held`` latents at per-token time 1
    (committed tokens). Returns ``(z_next, x_hat, t_b, z_b, alpha)``.
    """
    from textflow.noise import randn

    alpha = 1.0 if last else max(1.0 - gamma * float((t_next - t).flatten()[0]), 0.0)
    if alpha < 1.0:
        noise = randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
        z_b, t_b = denoiser.path.renoise(z, t, alpha, noise)
    else:
        z_b, t_b = z, t
    t_eval = t_b
    if hold is not None and bool(hold.any()):
        z_b = torch.where(hold.unsqueeze(-1), held, z_b)
        t_eval = torch.where(hold, torch.ones_like(hold, dtype=t_b.dtype), t_b.unsqueeze(-1))
    # per-token times (held positions) have no single jump target: a flow map then reads its diagonal
    x_hat = predict(denoiser, z_b, t_eval, t_next) if t_eval.dim() == 1 else denoiser(z_b, t_eval)
    z_next = x_hat if last else euler_update(denoiser, z_b, x_hat, t_b, t_next)
    if hold is not None and bool(hold.any()):
        z_next = torch.where(hold.unsqueeze(-1), held, z_next)
    return z_next, x_hat, t_b, z_b, alpha
