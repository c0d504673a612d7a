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

from textflow.kernels import readout_topk, row_slices, selected_logits
from textflow.kernels.readout_chunks import Head


def visible_basis(readout: Callable[[Tensor], Tensor], x: Tensor, competitors: int = 8, *,
                  head: Head | None = None) -> Tensor:
    """Orthonormal basis (B, L, D, k) of the span of the margin gradients toward the top competitors;
    directions beyond the span's rank are zero columns (rank-aware, via the SVD). With the readout's
    linear ``head`` the gradients flow through the k + 1 selected logits only."""
    grads = _margin_gradients_via_head(readout, x, competitors, head) if head is not None else None
    if grads is None:
        chunks = []
        for rows in row_slices(readout, x):  # a few sequences per readout call: no (B, L, V) logits tensor
            with torch.enable_grad():
                xg = x[rows].detach().clone().requires_grad_(True)
                top = readout(xg).float().topk(competitors + 1, dim=-1).values  # (b, L, k + 1)
                chunks.append(_margin_gradients(top, xg, competitors))
        grads = torch.cat(chunks)
    u, sv, _ = torch.linalg.svd(grads, full_matrices=False)  # (B, L, D, k)
    keep = sv > 1e-6 * sv.amax(dim=-1, keepdim=True).clamp_min(1e-30)
    return u * keep.unsqueeze(-2)


def _margin_gradients(top: Tensor, xg: Tensor, competitors: int) -> Tensor:
    """(b, L, D, k): gradients of ``top[..., 0] - top[..., j]`` for j = 1..k with respect to ``xg``."""
    grads = []
    for j in range(1, competitors + 1):
        (g,) = torch.autograd.grad((top[..., 0] - top[..., j]).sum(), xg, retain_graph=j < competitors)
        grads.append(g)
    return torch.stack(grads, dim=-1)


def _margin_gradients_via_head(readout, x: Tensor, competitors: int, head: Head) -> Tensor | None:
    index = readout_topk(readout, x, competitors + 1, head=head)
    with torch.enable_grad():
        xg = x.detach().clone().requires_grad_(True)
        top = selected_logits(head, xg, index)
        return None if top is None else _margin_gradients(top, xg, competitors)


@torch.no_grad()
def row_space_fraction(readout: Callable[[Tensor], Tensor], x: Tensor, r: Tensor, *, competitors: int = 8,
                       head: Head | None = None) -> float:
    """Mean over positions of ``|P r|^2 / |r|^2``."""
    return visible_fraction(visible_basis(readout, x, competitors, head=head), r)


def visible_fraction(basis: Tensor, r: Tensor) -> float:
    """Mean over positions of ``|P r|^2 / |r|^2`` for a basis from :func:`visible_basis` (reuse one basis
    for several directions)."""
    coeff = torch.einsum("bldk,bld->blk", basis, r)
    visible = coeff.pow(2).sum(-1)
    return float((visible / r.pow(2).sum(-1).clamp_min(1e-30)).mean())
