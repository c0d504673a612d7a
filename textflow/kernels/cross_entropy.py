"""Cross-entropy of a linear readout without the (positions x vocabulary) logits tensor (docs/benchmarks.md,
"Large vocabularies").

``loss = mean_i [logsumexp_v(f_i . w_v + b_v) - (f_i . w_{y_i} + b_{y_i})]``

The gradient with respect to ``f``, ``W`` and ``b`` is computed in the forward pass (``softmax -
onehot`` never outlives its piece of logits) and scaled by the incoming gradient in the backward pass
(not at all when that gradient is exactly 1, as in a training step), by one of two schedules:

* **whole rows** (:func:`_whole_rows`) in row chunks of up to
  :func:`textflow.kernels.chunking.ce_chunk_elements` logits (32 M floats by default: 640 rows at a 50 k
  vocabulary, 256 at 128 k), when a chunk holds at least :data:`WHOLE_ROW_CHUNK_MIN` rows (or all of them;
  :data:`WHOLE_ROW_CHUNK_MIN_ONEDNN` on oneDNN's GEMMs, so up to a 512 k vocabulary by default),
  or when the weight stays in cache while the chunks stream past it (:data:`CACHED_WEIGHT_BYTES`): per
  chunk one GEMM, the softmax in place, the two gradient GEMMs, on oneDNN where
  :func:`textflow.kernels.readout_gemm.gemm_backend` says (about twice as fast as PyTorch's CPU GEMM at D =
  64). The bias rides in the logits' GEMM and its gradient in the table's;
* **two passes over cache-sized tiles** (:func:`_two_pass_tiles`), otherwise (a budget that leaves fewer
  rows a chunk; by default a vocabulary past 128 k, 512 k on oneDNN): per block of positions, a first pass
  streams each row's log-sum-exp, best token and target logit over column tiles
  (:class:`~textflow.kernels.online.OnlineLogits`), a second recomputes each tile and adds its share of
  the gradients. It costs a fourth GEMM, but the weight and its gradient are read a couple of times
  per step instead of once per small row chunk.

Which wins is a question of rows per chunk: a chunk of a few dozen rows reads the whole weight and
accumulates its whole gradient for little work, and the tiles beat it (at 128 k tokens and D = 64, 32-row
chunks were 13 % slower than the tiles on one host); from a few hundred rows on, whole rows win by skipping
the fourth GEMM (at 50 k x 256 and 4,096 positions: 3.3 s in 512-row chunks, 4.4 s in tiles; at 128 k x 64
and 1,024 positions, the readout's time inside a training step 0.98 s in 256-row chunks against 1.01 s in
tiles, median of 5 paired runs; docs/benchmarks.md, "Large vocabularies").

At a 50 k vocabulary either replaces the full float32 logits, their softmax and their gradient (three
200 MB tensors for 1,024 positions). Logits are computed in float32 whatever the input dtype, as
``F.cross_entropy(logits.float(), ...)`` would see them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from textflow.kernels import readout_gemm
from textflow.kernels.chunking import cache_chunk_elements, ce_chunk_elements
from textflow.kernels.online import OnlineLogits, column_tiles
from textflow.kernels.readout_gemm import TableGradient, gemm_backend
from textflow.kernels.tile_ops import LN2, LOG2E, exp_, tile_top


ROW_TILE = 1024  # positions per row block of the two-pass kernel at most
# a weight up to this size is read from cache by every row chunk, so row chunks of whole rows, however few
# rows they hold, beat the two-pass tiles' extra GEMM: at 4,096 x 256 (4 MB) and 4,096 positions 249 ms
# against 331 ms, the dense F.cross_entropy 245 ms (docs/benchmarks.md, "Large vocabularies")
CACHED_WEIGHT_BYTES = 8 << 20
WHOLE_ROW_CHUNK_MIN = 256  # rows a whole-row chunk needs to beat the tiles when the weight is not cached
# the same on oneDNN's GEMMs (readout_gemm), whose whole-row chunks beat the tiles from 64 rows: at 1,024
# positions x 64 features, 1,245 against 1,682 ms at 262,144 tokens in 128-row chunks, 773 against 992 ms
# at 131,072 in 64-row ones (docs/bench/ce_row_chunks_probe.py; docs/benchmarks.md, "Large vocabularies")
WHOLE_ROW_CHUNK_MIN_ONEDNN = 64


def ce_tile_shape(n: int, vocab: int, elements: int | None = None) -> tuple[int, int]:
    """``(rows, columns)`` of a logits tile of the two-pass kernel: as many of the ``n`` positions as
    :data:`ROW_TILE` allows, and the columns that fill ``elements`` floats (the cache-sized budget,
    :func:`~textflow.kernels.chunking.cache_chunk_elements`)."""
    elements = cache_chunk_elements() if elements is None else elements
    rows = max(1, min(n, ROW_TILE, elements))
    columns = max(1, min(vocab, elements // rows))
    return rows, columns


def _whole_rows(f32, w32, b32, targets, chunk_rows, want, totals, backend: str | None = None) -> tuple:
    """Row chunks that each hold all V logits of their rows: one GEMM per chunk, then its softmax and
    the gradients' GEMMs while the chunk is in memory (:mod:`textflow.kernels.readout_gemm`). Serves when
    the weight and a chunk fit the cache, or a chunk holds enough rows. Returns the wanted gradients of
    the features, the weight and the bias (None for the others). ``backend``: the GEMMs' (None: asks
    :func:`~textflow.kernels.readout_gemm.gemm_backend`).

    No pass scales the chunk: the logits come out of the GEMM in base-2 units (the features and the bias
    times log2 e), so the softmax is ``exp2(l - max l)``; each row's normalisation and the mean's ``1 / n``
    scale the small factors of the gradient GEMMs instead (the (n, D) features' gradient after its GEMM,
    the features before the table's), and the target's ``-1`` enters the unnormalised row as ``-sum``."""
    n = f32.shape[0]
    backend = gemm_backend(f32, w32) if backend is None else backend
    grad_f = torch.empty_like(f32) if want[0] else None
    table = TableGradient(backend=backend, weight=want[1], bias=b32 is not None and want[2])
    bias2 = None if b32 is None else b32 * LOG2E
    for start in range(0, n, chunk_rows):
        rows = slice(start, min(start + chunk_rows, n))
        f, y = f32[rows], targets[rows]
        logits = readout_gemm.logits(f * LOG2E, w32, bias2, backend)  # base-2 units
        picked = logits.gather(1, y[:, None]).squeeze(1)
        top, argmax = tile_top(logits, 1)  # the row max (for a stable exp) and the argmax, (n, 1) each
        totals[1] += (argmax[:, 0] == y).sum()
        probs = logits.sub_(top).exp2_()  # exp(l - max l), in place of the chunk's logits
        norm = probs.sum(-1)
        totals[0] += ((top[:, 0] + norm.log2() - picked) * LN2).sum(dtype=torch.float64)
        if not any(want):
            continue
        share = 1.0 / (norm * n)  # d mean loss / d logits = share * (probs - norm * onehot)
        probs[torch.arange(len(y), device=y.device), y] -= norm
        if grad_f is not None:
            torch.mul(readout_gemm.rows_times_table(probs, w32, backend), share[:, None], out=grad_f[rows])
        if table.weight or table.bias:
            table.add(probs, f, share)
    return (grad_f, *table.result())


def _two_pass_tiles(f32, w32, b32, targets, tile, grads, totals) -> None:
    """Tiles of ``rows x columns`` logits, two passes per block of rows: the first streams the
    log-sum-exp, the best token and the target's logit (:class:`~textflow.kernels.online.OnlineLogits`),
    the second recomputes each tile, turns it into ``softmax - onehot`` and adds its share of the
    gradients. One more logits GEMM than :func:`_whole_rows`, but the weight and its gradient are read
    once per pass of a row block instead of once per small row chunk: at a 128 k vocabulary the table
    (33 MB at D = 64) outgrows the cache and those reads were the kernel's cost (docs/benchmarks.md,
    "Large vocabularies")."""
    grad_f, grad_w, grad_b = grads
    n, (block, columns) = f32.shape[0], tile
    backend = gemm_backend(f32[:block], w32[:columns])
    for start in range(0, n, block):
        rows = slice(start, min(start + block, n))
        f, y = f32[rows], targets[rows]
        stats = OnlineLogits(topk=1, tokens=y)
        for column, logits in column_tiles(f, w32, b32, columns):
            stats.update(column, logits)
        lse = stats.lse()
        totals[0] += (lse - stats.picked).sum(dtype=torch.float64)
        totals[1] += (stats.indices[:, 0] == y).sum()
        if not any(g is not None for g in grads):
            continue
        if grad_f is not None:
            grad_f[rows].zero_()
        for column, logits in column_tiles(f, w32, b32, columns):
            cols = slice(column, column + logits.shape[1])
            probs = exp_(logits.sub_(lse[:, None])).mul_(1.0 / n)  # softmax / n
            local = y - column
            inside = ((local >= 0) & (local < logits.shape[1])).nonzero().squeeze(1)
            probs[inside, local[inside]] -= 1.0 / n  # d mean loss / d logits
            if grad_f is not None:
                readout_gemm.add_rows_times_table(grad_f[rows], probs, w32[cols], backend)
            if grad_w is not None:
                readout_gemm.add_rows_transposed_times(grad_w[cols], probs, f, backend)
            if grad_b is not None:
                grad_b[cols] += probs.sum(0)


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, features: Tensor, weight: Tensor, bias: Tensor | None, targets: Tensor,
                chunk_rows: int, track: bool) -> tuple[Tensor, Tensor]:
        n = features.shape[0]
        f32, w32 = features.float(), weight.float()
        b32 = None if bias is None else bias.float()
        want = tuple(track and w for w in ctx.needs_input_grad)  # nothing to keep outside autograd
        totals = [torch.zeros((), dtype=torch.float64, device=features.device),
                  torch.zeros((), dtype=torch.int64, device=features.device)]
        cached = w32.numel() * w32.element_size() <= CACHED_WEIGHT_BYTES
        backend = gemm_backend(f32, w32)
        fewest = WHOLE_ROW_CHUNK_MIN_ONEDNN if backend == "onednn" else WHOLE_ROW_CHUNK_MIN
        if chunk_rows >= min(n, fewest) or cached:
            grads = _whole_rows(f32, w32, b32, targets, chunk_rows, want, totals, backend)
        else:
            grads = (torch.empty_like(f32) if want[0] else None, torch.zeros_like(w32) if want[1] else None,
                     torch.zeros_like(b32) if b32 is not None and want[2] else None)
            _two_pass_tiles(f32, w32, b32, targets, ce_tile_shape(n, w32.shape[0]), grads, totals)
        ctx.save_for_backward(*grads)
        ctx.dtypes = (features.dtype, weight.dtype, None if bias is None else bias.dtype)
        ctx.mark_non_differentiable(totals[1])
        return (totals[0] / max(n, 1)).float(), totals[1]

    @staticmethod
    def backward(ctx, grad_loss: Tensor, _grad_correct: Tensor):
        # the loss's own gradient is usually exactly 1: hand the saved gradients on without a table-sized pass
        unit = grad_loss.device.type == "cpu" and float(grad_loss) == 1.0
        grads = []
        for g, dtype in zip(ctx.saved_tensors, ctx.dtypes):
            grads.append(None if g is None else (g if unit else g * grad_loss).to(dtype))
        return grads[0], grads[1], grads[2], None, None, None


def linear_cross_entropy(features: Tensor, weight: Tensor, bias: Tensor | None,
                         targets: Tensor) -> tuple[Tensor, Tensor]:
    """``(mean CE, accuracy)`` of the readout ``logits = features @ weight.T + bias`` against ``targets``.

    ``features`` (..., D), ``weight`` (V, D), ``bias`` (V,) or None, ``targets`` (...) int64. The CE is
    differentiable in ``features``, ``weight`` and ``bias``; the accuracy (top-1 equals target) is not.
    Equal to ``F.cross_entropy(F.linear(features, weight, bias).float().flatten(0, -2), targets.flatten())``
    up to float32 rounding (tests/test_kernels.py)."""
    flat = features.reshape(-1, features.shape[-1])
    y = targets.reshape(-1)
    if flat.shape[0] != y.shape[0]:
        raise ValueError(f"linear_cross_entropy: {flat.shape[0]} feature rows but {y.shape[0]} targets")
    if flat.shape[0] == 0:
        raise ValueError("linear_cross_entropy: no positions to score")
    track = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (flat, weight, bias))
    chunk_rows = max(1, ce_chunk_elements() // weight.shape[0])
    loss, correct = _LinearCrossEntropy.apply(flat, weight, bias, y, chunk_rows, track)
    return loss, correct.float() / y.shape[0]
