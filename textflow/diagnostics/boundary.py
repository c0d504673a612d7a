"""Decision-boundary geometry of a readout at clean latents (docs/diagnostics.md).

For each position with decoded token ``y`` and runner-up ``y'`` the logit margin is
``m = l_y - l_y'``; its gradient ``g = grad_x m`` (autograd through the decoder, so any readout works;
for a linear readout ``g = w_y - w_y'``) gives the unit boundary normal pointing toward the runner-up,
``n = -g / |g|``, and the geometric margin ``m / |g|`` (distance to the boundary to first order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from textflow.kernels import readout_topk, row_slices, selected_logits
from textflow.kernels.readout_chunks import Head


@dataclass
class BoundaryGeometry:
    tokens: Tensor  # (B, L) decoded tokens y
    runner_up: Tensor  # (B, L) y'
    logit_margin: Tensor  # (B, L) m = l_y - l_y'
    normal: Tensor  # (B, L, D) unit normal toward the runner-up
    geometric_margin: Tensor  # (B, L) m / |grad m|


def boundary_geometry(readout: Callable[[Tensor], Tensor], x: Tensor, *, head: Head | None = None) -> BoundaryGeometry:
    """Margins and boundary normals of ``readout`` at latents ``x`` (B, L, D), a few sequences per
    readout call (:func:`textflow.kernels.row_slices`: no (B, L, V) logits tensor). With the readout's
    linear ``head`` (:func:`textflow.kernels.selected_logits`), the gradient flows through the two
    selected logits only instead of all V."""
    if head is not None:
        index = readout_topk(readout, x, 2, head=head)
        with torch.enable_grad():
            xg = x.detach().clone().requires_grad_(True)
            picked = selected_logits(head, xg, index)
            if picked is not None:
                margin = picked[..., 0] - picked[..., 1]
                (grad,) = torch.autograd.grad(margin.sum(), xg)
                return _geometry(index[..., 0], index[..., 1], margin.detach(), grad)
    tokens, runner_up, margins, grads = [], [], [], []
    for rows in row_slices(readout, x):
        with torch.enable_grad():
            xg = x[rows].detach().clone().requires_grad_(True)
            top2 = readout(xg).float().topk(2, dim=-1)
            margin = top2.values[..., 0] - top2.values[..., 1]
            # the margin of one position depends on the latents of its own sequence only
            (grad,) = torch.autograd.grad(margin.sum(), xg)
        tokens.append(top2.indices[..., 0])
        runner_up.append(top2.indices[..., 1])
        margins.append(margin.detach())
        grads.append(grad)
    return _geometry(torch.cat(tokens), torch.cat(runner_up), torch.cat(margins), torch.cat(grads))


def _geometry(tokens: Tensor, runner_up: Tensor, margin: Tensor, grad: Tensor) -> BoundaryGeometry:
    norm = grad.norm(dim=-1).clamp_min(1e-12)
    return BoundaryGeometry(tokens=tokens, runner_up=runner_up, logit_margin=margin,
                            normal=-(grad / norm.unsqueeze(-1)), geometric_margin=margin / norm)
