"""Two operations on a logits tile, written around slow paths of PyTorch's CPU kernels (docs/benchmarks.md,
"Sampling at the machine's limit", sixth block). :func:`tile_top` gives exactly what the plain call
gives (the columns too for ``k = 1``); :func:`exp_` agrees with ``exp`` to float32 rounding.

- :func:`tile_top`: a row's best ``k`` logits and their columns. ``max``/``topk`` along a row with
  indices run as a scalar loop, about ten times slower than ``amax``; a two-level search does most of
  the work in ``amax``.
- :func:`exp_`: ``x.exp_()`` as ``exp2(x log2 e)``, since ``exp2`` runs about twice as fast as ``exp``
  there.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

TOP_BLOCK = 64  # columns per block of tile_top's first level
LOG2E = 1.0 / math.log(2.0)
LN2 = math.log(2.0)  # natural units per base-2 unit of a logit


def tile_top(logits: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """``(values, columns)``, each (n, k), of the ``k`` largest logits of every row of a tile (n, c), best
    first: what ``logits.topk(k)`` gives, and for ``k = 1`` what ``logits.max(-1)`` gives, the first column
    of a tie (and a nan) included.

    The columns split into blocks of :data:`TOP_BLOCK` (the last one may be shorter). The search takes
    each block's maximum (one vectorised ``amax``), then searches exactly inside the ``k`` blocks with the
    largest maxima, which hold the ``k`` largest logits: a block outside them has a maximum no larger than
    ``k`` maxima inside. For ``k = 1`` the first best block holds the first best column. Narrow tiles,
    non-contiguous ones, and ``k > 1`` with a short last block take ``topk``/``max`` directly."""
    n, c = logits.shape
    full, tail = divmod(c, TOP_BLOCK)
    if full < max(4, k) or (tail and k > 1) or not logits.is_contiguous():
        if k == 1:
            best = logits.max(dim=-1, keepdim=True)
            return best.values, best.indices
        return logits.topk(k, dim=-1)
    block_max = logits[:, :full * TOP_BLOCK].view(n, full, TOP_BLOCK).amax(-1)
    if tail:
        block_max = torch.cat([block_max, logits[:, full * TOP_BLOCK:].amax(-1, keepdim=True)], dim=1)
    # the k best blocks in column order, so that ties among the candidates break as they would in the row
    best = block_max.argmax(-1, keepdim=True) if k == 1 else block_max.topk(k, dim=-1).indices.sort(-1).values
    columns = (best.unsqueeze(-1) * TOP_BLOCK + torch.arange(TOP_BLOCK, device=logits.device)).view(n, -1)
    if tail:  # k = 1: past the last column reads -inf, below the best block's maximum (or it is block 0)
        window = logits.gather(1, columns.clamp_max(c - 1)).masked_fill_(columns >= c, float("-inf"))
    else:
        window = logits.gather(1, columns)
    values, pos = window.max(dim=-1, keepdim=True) if k == 1 else window.topk(k, dim=-1)
    return values, columns.gather(1, pos)


def exp_(x: Tensor) -> Tensor:
    """``x.exp_()``: the exponential written into ``x`` and returned, as ``exp2(x log2 e)``. For ``x <= 0``
    (every caller takes ``exp(l - max l)``) its relative error is about ``|x|`` float32 ulps (1e-7 near 0,
    2e-6 at -30) where ``exp``'s is 6e-8, so a row's sum moves by about 1e-7 (tests/test_kernels.py)."""
    return x.mul_(LOG2E).exp2_()
