"""Row-space fraction (docs/diagnostics.md): how much of a perturbation the readout can see.

    rho(r) = |P r|^2 / |r|^2

with ``P`` the projector onto the decoder-visible subspace at each position. textflow's definition
(the paper's exact construction is not given): the span of the boundary normals toward the
``competitors`` strongest runner-ups, ``grad_x (l_y - l_j)`` for the top ``competitors`` tokens
``j != y`` (autograd, so any readout works; for a linear readout these are ``w_y - w_j``). The
paper finds the realised residual about 99 % in the null space (``rho ~ 0.01``); an isotropic
direction has ``rho ~ competitors / D``.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor


def visible_basis(readout: Callable[[Tensor], Tensor], x: Tensor, competitors: int = 8) -> Tensor:
    """Orthonormal basis (B, L, D, k) of the span of the margin gradients toward the top competitors;
    directions beyond the span's rank are zero columns (rank-aware, via the SVD)."""
    with torch.enable_grad():
        xg = x.detach().clone().requires_grad_(True)
        logits = readout(xg).float()
        top = logits.topk(competitors + 1, dim=-1).values  # (B, L, k + 1)
        grads = []
        for j in range(1, competitors + 1):
            (g,) = torch.autograd.grad((top[..., 0] - top[..., j]).sum(), xg, retain_graph=j < competitors)
            grads.append(g)
    u, sv, _ = torch.linalg.svd(torch.stack(grads, dim=-1).detach(), full_matrices=False)  # (B, L, D, k)
    keep = sv > 1e-6 * sv.amax(dim=-1, keepdim=True).clamp_min(1e-30)
    return u * keep.unsqueeze(-2)


@torch.no_grad()
def row_space_fraction(readout: Callable[[Tensor], Tensor], x: Tensor, r: Tensor, *, competitors: int = 8) -> float:
    """Mean over positions of ``|P r|^2 / |r|^2``."""
    basis = visible_basis(readout, x, competitors)
    coeff = torch.einsum("bldk,bld->blk", basis, r)
    visible = coeff.pow(2).sum(-1)
    return float((visible / r.pow(2).sum(-1).clamp_min(1e-30)).mean())
