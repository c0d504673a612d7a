"""Decoded tokens and cross-entropies of many perturbations ``x + f * delta`` of the same latents through a
readout that is linear in the latents (docs/benchmarks.md, "Large vocabularies").

For ``logits(x) = x W^T + b`` the logits of a perturbation are ``logits(x) + f * (delta W^T)``: one
matmul per direction ``delta`` serves every scale ``f``, and the clean logits one matmul for all. DABI
scores ``len(f_grid) x (draws + 2)`` perturbations; this does ``draws + 3`` matmuls per chunk of
positions instead, and adds and reduces the rest (equal to the direct computation up to float32
rounding; tests/test_kernels.py).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from textflow.kernels.chunking import chunk_elements


@torch.no_grad()
def perturbation_stats(x: Tensor, tokens: Tensor, weight: Tensor, bias: Tensor | None, deltas: Sequence[Tensor],
                       scales: Sequence[float]) -> dict[tuple[int, float], tuple[Tensor, Tensor]]:
    """``{(i, f): (decoded tokens (B, L), CE of tokens (B, L))}`` at ``x + f * deltas[i]`` for a readout
    ``x W^T + b`` (``x``, every delta (B, L, D); ``tokens`` (B, L))."""
    w = weight.detach().float()
    b = None if bias is None else bias.detach().float()
    flat_x = x.reshape(-1, x.shape[-1]).float()
    flat_d = [d.reshape(-1, d.shape[-1]).float() for d in deltas]
    flat_t = tokens.reshape(-1)
    step = max(1, chunk_elements() // w.shape[0])
    parts: dict[tuple[int, float], tuple[list, list]] = {(i, f): ([], []) for i in range(len(deltas)) for f in scales}
    for start in range(0, flat_x.shape[0], step):
        rows = slice(start, min(start + step, flat_x.shape[0]))
        clean = flat_x[rows] @ w.T if b is None else torch.addmm(b, flat_x[rows], w.T)
        y = flat_t[rows, None]
        for i, delta in enumerate(flat_d):
            shift = delta[rows] @ w.T
            for f in scales:
                logits = torch.add(clean, shift, alpha=f)
                picked = logits.gather(1, y).squeeze(1)
                top = logits.max(dim=-1)
                norm = logits.sub_(top.values[:, None]).exp_().sum(-1)
                decoded, ce = parts[(i, f)]
                decoded.append(top.indices)
                ce.append(top.values + norm.log() - picked)
    return {key: (torch.cat(d).view(tokens.shape), torch.cat(c).view(tokens.shape)) for key, (d, c) in parts.items()}
