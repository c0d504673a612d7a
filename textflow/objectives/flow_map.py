"""The flow-map distillation loss (docs/samplers.md, "Flow-map students").

One batch trains the two-time student ``X(z_s, s, t)`` (:mod:`textflow.backbones.flow_map`) on three
kinds of rows, all regressed in ``x_hat`` space (the student's output is the ``x_hat`` of its jump):

* **diagonal** (a fraction ``anchor_fraction`` of rows, ``s ~ U[0, 1)``, ``t = s``): the teacher's
  ``x_hat(z_s, s)``, which anchors the flow map to the teacher's velocity as ``t -> s`` (Boffi et al.
  2025, arXiv 2505.18825, the tangent condition);
* **finest intervals** (``t - s = 2^-levels`` on the dyadic grid): the teacher's two Euler half steps,
  progressive distillation's target (:func:`textflow.objectives.distillation.two_step_target`);
* **coarser dyadic intervals** (``t - s = 2^-m``, ``m < levels``, one level drawn uniformly per row):
  the student's own two half jumps, without gradient: the semigroup condition
  ``X(s, t) = X(u, t) o X(s, u)`` at the midpoint ``u`` (self-distillation, as the shortcut models of
  Frans et al. 2024, arXiv 2410.12557, and FMLM's semigroup objective, arXiv 2602.16813).

Every interval of every uniform K-step grid with ``K <= 2^levels`` is trained directly; other grids use
the network's interpolation in ``(s, t)``. ``z_s`` lies on the path through a data latent, as in
progressive distillation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from textflow.checks import require_int, require_number
from textflow.objectives.distillation import two_step_target
from textflow.types import Latents


def check_flow_map_knobs(*, levels: int, anchor_fraction: float) -> tuple[int, float]:
    levels = require_int("stage.levels", levels, low=1, high=12, hint=" (the finest interval is 2^-levels)")
    fraction = require_number("stage.anchor_fraction", anchor_fraction, low=0, high=1, high_open=True,
                              hint=" (the share of diagonal rows t = s)")
    return levels, fraction


def draw_intervals(batch: int, *, levels: int, anchor_fraction: float, device=None,
                   generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(s, t, level, diagonal)`` per row: diagonal rows have ``t = s`` with ``s ~ U[0, 1)``; the others
    a dyadic interval ``[i 2^-m, (i + 1) 2^-m]`` with ``m`` uniform on ``0..levels`` (``level = m``)."""
    u = torch.rand(3, batch, generator=generator)
    level = torch.randint(0, levels + 1, (batch,), generator=generator)
    n = (2 ** level).float()
    s = torch.floor(u[0] * n) / n
    t = s + 1.0 / n
    diagonal = u[1] < anchor_fraction
    s = torch.where(diagonal, u[2], s)
    t = torch.where(diagonal, s, t)
    return s.to(device), t.to(device), level.to(device), diagonal.to(device)


def _fill(target: Tensor, rows: Tensor, fn) -> None:
    index = rows.nonzero().squeeze(1)
    if index.numel():
        target[index] = fn(index).to(target.dtype)


def flow_map_loss(student, teacher, *, x: Latents, noise: Tensor, levels: int, anchor_fraction: float,
                  generator: torch.Generator | None = None) -> Tensor:
    """The mean squared ``x_hat`` error of one batch (module docstring). ``student`` is a
    :class:`textflow.denoiser.FlowDenoiser` around a flow map (trained), ``teacher`` the teacher's
    denoiser (frozen); ``x`` clean latents (B, L, D) (one-hot ones may come as their ids,
    :class:`~textflow.types.OneHotLatents`), ``noise`` like ``x``."""
    s, t, level, diagonal = draw_intervals(x.shape[0], levels=levels, anchor_fraction=anchor_fraction,
                                           device=x.device, generator=generator)
    z_s = teacher.path.sample(x, s, noise).z
    target = torch.empty_like(z_s, dtype=torch.float32)
    with torch.no_grad():
        _fill(target, diagonal, lambda i: teacher(z_s[i], s[i]))
        _fill(target, ~diagonal & (level == levels), lambda i: two_step_target(teacher, z_s[i], s[i], t[i]))
        _fill(target, ~diagonal & (level < levels), lambda i: two_step_target(student, z_s[i], s[i], t[i]))
    return F.mse_loss(student(z_s, s, t_next=t).float(), target)
