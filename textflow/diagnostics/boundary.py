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


@dataclass
class BoundaryGeometry:
    tokens: Tensor  # (B, L) decoded tokens y
    runner_up: Tensor  # (B, L) y'
    logit_margin: Tensor  # (B, L) m = l_y - l_y'
    normal: Tensor  # (B, L, D) unit normal toward the runner-up
    geometric_margin: Tensor  # (B, L) m / |grad m|


def boundary_geometry(readout: Callable[[Tensor], Tensor], x: Tensor) -> BoundaryGeometry:
    """Margins and boundary normals of ``readout`` at latents ``x`` (B, L, D)."""
    with torch.enable_grad():
        xg = x.detach().clone().requires_grad_(True)
        logits = readout(xg).float()
        top2 = logits.topk(2, dim=-1)
        margin = top2.values[..., 0] - top2.values[..., 1]
        (grad,) = torch.autograd.grad(margin.sum(), xg)  # positions are independent in a per-token readout
    norm = grad.norm(dim=-1).clamp_min(1e-12)
    return BoundaryGeometry(tokens=top2.indices[..., 0], runner_up=top2.indices[..., 1],
                            logit_margin=margin.detach(), normal=-(grad / norm.unsqueeze(-1)).detach(),
                            geometric_margin=(margin / norm).detach())
