"""Per-position statistics of readout logits seen one vocabulary tile at a time (docs/benchmarks.md,
"Large vocabularies").

A linear readout ``x W^T + b`` gives each position's logits over V tokens. Every diagnostic and sampler
needs only a few numbers per position from them: the best ``k`` tokens, the log-sum-exp (hence the
cross-entropy of a given token and the top probabilities), the entropy. :class:`OnlineLogits` keeps
those numbers for a block of positions while the logits arrive in column tiles, so a tile of
``rows x columns`` logits (:func:`tile_shape`, about :func:`~textflow.kernels.chunking.cache_chunk_elements`
floats) is produced by one ``addmm``, read by every reduction while it is still in cache, and
discarded. Nothing of size positions x V is ever held, at any V. The running log-sum-exp is the
usual streaming form: on a new maximum ``m'`` the running sum is rescaled by ``exp(m - m')``; the
entropy keeps ``u = sum e (l - m)`` beside ``s = sum e`` (``e = exp(l - m)``), so ``H = log s - u / s``.
A tile's best tokens and its exponentials come from :mod:`textflow.kernels.tile_ops`.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch import Tensor

from textflow.kernels import readout_gemm
from textflow.kernels.tile_ops import LN2, LOG2E, exp_, tile_top

VOCAB_TILE = 4096  # vocabulary columns per tile at most (docs/benchmarks.md, "Large vocabularies")


def tile_shape(vocab: int, elements: int) -> tuple[int, int]:
    """``(rows, columns)`` of a logits tile holding about ``elements`` floats, columns at most
    :data:`VOCAB_TILE`."""
    columns = max(1, min(vocab, VOCAB_TILE, elements))
    return max(1, elements // columns), columns


def column_tiles(features: Tensor, weight: Tensor, bias: Tensor | None, columns: int, *,
                 base2: bool = False) -> Iterator[tuple[int, Tensor]]:
    """``(first column, logits (n, c))`` of ``features (n, D) W^T + b`` over column tiles of ``columns``
    (each tile's GEMM on :func:`textflow.kernels.readout_gemm.gemm_backend`'s choice). ``base2``: the logits
    times log2 e, for an :class:`OnlineLogits` built with ``base2=True`` (the factor rides on the features
    and the bias, so no pass scales a tile)."""
    backend = readout_gemm.gemm_backend(features, weight[:columns])
    if base2:
        features, bias = features * LOG2E, None if bias is None else bias * LOG2E
    for start in range(0, weight.shape[0], columns):
        cols = slice(start, start + columns)
        tile_bias = None if bias is None else bias[cols]
        yield start, readout_gemm.logits(features, weight[cols], tile_bias, backend)


class OnlineLogits:
    """Running statistics of the logits of ``n`` positions, fed a column tile at a time by :meth:`update`.

    Always: the best ``topk`` logits and their tokens (best first; on a tie across tiles the earlier
    column wins for ``topk = 1``). ``logsumexp`` (default): also the log-sum-exp; without it (the argmax
    decode) a tile costs one max pass instead of a max and an ``exp`` pass. ``tokens`` (n,): also the logit
    of each position's given token (its cross-entropy is ``lse - picked``). ``entropy``: also the entropy
    of the softmax (a ``-inf`` logit contributes 0). Both need the log-sum-exp. ``base2``: the tiles hold
    the logits times log2 e (:func:`column_tiles` with ``base2=True``), so a tile's exponential is one
    ``exp2`` pass; every result is still in natural units.
    """

    def __init__(self, *, topk: int = 1, tokens: Tensor | None = None, entropy: bool = False,
                 logsumexp: bool = True, base2: bool = False):
        if not logsumexp and (tokens is not None or entropy):
            raise ValueError("OnlineLogits: a token's cross-entropy and the entropy need logsumexp=True")
        self.k, self.tokens, self.track_entropy, self.track_lse = topk, tokens, entropy, logsumexp
        self.unit = LN2 if base2 else 1.0  # natural units per unit of a tile
        # m, values and picked in a tile's units; s and u (sums of exponentials) are unit-free and natural
        self.values = self.indices = self.m = self.s = self.u = self.picked = None

    def update(self, start: int, logits: Tensor, *, owned: bool = True) -> None:
        """Fold in the logits (n, c) of columns ``[start, start + c)``. An ``owned`` tile (made for this
        call) is overwritten; pass ``owned=False`` for logits someone else still reads."""
        if self.tokens is not None:
            local = self.tokens - start
            inside = (local >= 0) & (local < logits.shape[1])
            got = logits.gather(1, local.clamp(0, logits.shape[1] - 1)[:, None]).squeeze(1)
            self.picked = torch.where(inside, got, self.picked if self.picked is not None else got)
        tile_max = self._merge_top(start, logits)
        if not self.track_lse:
            return
        new_m = tile_max if self.m is None else torch.maximum(self.m, tile_max)
        shift = torch.where(torch.isfinite(new_m), new_m, torch.zeros_like(new_m))  # all -inf so far: e = 0
        centred = logits.sub_(shift[:, None]) if owned else logits - shift[:, None]
        e = centred.exp2_() if self.unit != 1.0 else exp_(centred)
        ue = torch.special.xlogy(e, e).sum(-1) if self.track_entropy else None  # sum e (l - shift), in nats
        se = e.sum(-1)
        if self.m is None:
            self.s, self.u = se, ue
        else:  # rows that saw a finite logit before summed against their old maximum; the others hold 0
            seen = torch.isfinite(self.m)
            old = torch.where(seen, self.m, shift)
            gap = old - shift
            shrink = torch.where(seen, gap.exp2() if self.unit != 1.0 else gap.exp(), torch.zeros_like(shift))
            if self.track_entropy:
                self.u = shrink * (self.u + self.s * (gap * self.unit)) + ue
            self.s = self.s * shrink + se
        self.m = new_m

    def _merge_top(self, start: int, logits: Tensor) -> Tensor:
        """Merge the tile's best tokens into the running ones; returns the tile's maximum (n,)."""
        values, indices = tile_top(logits, min(self.k, logits.shape[1]))
        indices = indices + start
        tile_max = values[:, 0]
        if self.values is None:
            self.values, self.indices = values, indices
        elif self.k == 1:
            better = values > self.values
            self.values, self.indices = torch.where(better, values, self.values), torch.where(better, indices, self.indices)
        else:
            values, indices = torch.cat([self.values, values], 1), torch.cat([self.indices, indices], 1)
            top = values.topk(min(self.k, values.shape[1]), dim=-1)
            self.values, self.indices = top.values, indices.gather(1, top.indices)
        return tile_max

    def lse(self) -> Tensor:
        if not self.track_lse:
            raise ValueError("OnlineLogits was built with logsumexp=False; it keeps only the best tokens")
        return self.m * self.unit + self.s.log()

    def cross_entropy(self) -> Tensor:
        return self.lse() - self.picked * self.unit

    def entropy(self) -> Tensor:
        return self.s.log() - self.u / self.s

    def top_probs(self) -> Tensor:
        """The best ``topk`` probabilities; columns past the vocabulary are 0."""
        probs = (self.values * self.unit - self.lse()[:, None]).exp()
        return torch.nn.functional.pad(probs, (0, self.k - probs.shape[1]))
