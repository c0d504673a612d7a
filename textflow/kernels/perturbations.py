"""Decoded tokens and cross-entropies of many perturbations ``x + f * delta`` of the same latents through a
readout that is linear in the latents (docs/benchmarks.md, "Large vocabularies").

For ``logits(x) = x W^T + b`` the logits of a perturbation are ``logits(x) + f * (delta W^T)``: one
matmul per direction ``delta`` serves every scale ``f``, and the clean logits one matmul for all. DABI
scores ``len(f_grid) x (draws + 2)`` perturbations; this does ``draws + 3`` matmuls per tile of
positions x vocabulary columns instead, and adds and reduces the rest while the tile is in cache
(:mod:`textflow.kernels.online`; equal to the direct computation up to float32 rounding;
tests/test_kernels.py).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from textflow.kernels import readout_gemm
from textflow.kernels.chunking import cache_chunk_elements
from textflow.kernels.online import OnlineLogits, column_tiles, tile_shape
from textflow.kernels.tile_ops import LOG2E


@torch.no_grad()
def perturbation_stats(x: Tensor, tokens: Tensor, weight: Tensor, bias: Tensor | None, deltas: Sequence[Tensor],
                       scales: Sequence[float]) -> dict[tuple[int, float], tuple[Tensor, Tensor]]:
    """``{(i, f): (decoded tokens (B, L), CE of tokens (B, L))}`` at ``x + f * deltas[i]`` for a readout
    ``x W^T + b`` (``x``, every delta (B, L, D); ``tokens`` (B, L))."""
    w = weight.detach().float()
    b = None if bias is None else bias.detach().float()
    flat_x = x.reshape(-1, x.shape[-1]).float()
    flat_d = [d.reshape(-1, d.shape[-1]).float() * LOG2E for d in deltas]  # base-2 logits, as the clean tiles
    flat_t = tokens.reshape(-1)
    block, columns = tile_shape(w.shape[0], cache_chunk_elements())
    parts: dict[tuple[int, float], tuple[list, list]] = {(i, f): ([], []) for i in range(len(deltas)) for f in scales}
    backend = readout_gemm.gemm_backend(flat_x[:block], w[:columns])  # as column_tiles's
    for start in range(0, flat_x.shape[0], block):
        rows = slice(start, min(start + block, flat_x.shape[0]))
        stats = {key: OnlineLogits(tokens=flat_t[rows], base2=True) for key in parts}
        for column, clean in column_tiles(flat_x[rows], w, b, columns, base2=True):
            w_tile = w[column:column + columns]
            for i, delta in enumerate(flat_d):
                shift = readout_gemm.logits(delta[rows], w_tile, None, backend)
                for f in scales:
                    stats[(i, f)].update(column, torch.add(clean, shift, alpha=f))
        for key, (decoded, ce) in parts.items():
            decoded.append(stats[key].indices[:, 0])
            ce.append(stats[key].cross_entropy())
    return {key: (torch.cat(d).view(tokens.shape), torch.cat(c).view(tokens.shape)) for key, (d, c) in parts.items()}
