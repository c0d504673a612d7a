"""The tied readout's weight ``tau * E / |E|`` (unit-norm embedding rows times a learned temperature)
with a hand-written backward (docs/benchmarks.md, "Large vocabularies").

``exp(log_tau) * F.normalize(E, dim=-1)`` through autograd makes about a dozen passes over the V x D
table per training step (the division and the temperature forward, then their backward: a division, a
negation, several products and sums), each one allocating a table-sized temporary. At a 128 k vocabulary
that is 33 MB a pass, and the passes cost more than everything else the step does outside the readout's
matmuls. Here the forward is one norm and one scaled copy, and the backward is one fused row dot product
and two passes that write the gradient:

``W = tau E / n`` with ``n = max(|E_v|, eps)`` per row, and for an incoming gradient ``G``,
``dL/dE = (tau / n) (G - E r / n^2)`` with ``r = sum_d G E`` (the second term only where ``|E_v| > eps``,
since a clamped norm is constant) and ``dL/dlog_tau = tau sum_v r / n``.

Both directions walk the table in blocks of :data:`BLOCK_ROWS` rows, every pass of a block running while
the block is in cache, so the table and its gradient cross the memory bus about once each way: at 131,072 x
64 the forward and backward took 12 ms against 17 ms as whole-table passes (``python
docs/bench/unit_rows_probe.py``; docs/benchmarks.md, "Large vocabularies").
"""

from __future__ import annotations

import torch
from torch import Tensor

EPS = 1e-12  # F.normalize's default: a row shorter than this is divided by EPS instead


BLOCK_ROWS = 8192  # rows a block (2 MiB at D = 64): every pass over a block finds it in cache


def _blocks(rows: int) -> list[slice]:
    return [slice(start, min(start + BLOCK_ROWS, rows)) for start in range(0, rows, BLOCK_ROWS)]


class _ScaledUnitRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx, table: Tensor, log_scale: Tensor) -> Tensor:
        scale = log_scale.exp()
        norms, out = table.new_empty(table.shape[0]), torch.empty_like(table)
        for rows in _blocks(table.shape[0]):
            block = table[rows]
            norm = torch.linalg.vector_norm(block, dim=-1, out=norms[rows])
            torch.mul(block, (scale / norm.clamp_min(EPS))[:, None], out=out[rows])
        ctx.save_for_backward(table, norms, scale)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        table, norms, scale = ctx.saved_tensors
        r = grad.new_empty(table.shape[0])  # sum_d G E, per row
        grad_table = torch.empty_like(table) if ctx.needs_input_grad[0] else None
        for rows in _blocks(table.shape[0]):
            g, block, norm = grad[rows], table[rows], norms[rows]
            dot = torch.linalg.vecdot(g, block, out=r[rows])
            if grad_table is not None:
                clamped = norm.clamp_min(EPS)
                along = torch.where(norm > EPS, dot / clamped.square(), torch.zeros_like(dot))
                out = torch.addcmul(g, block, along[:, None], value=-1.0, out=grad_table[rows])
                out.mul_((scale / clamped)[:, None])
        grad_log_scale = scale * (r / norms.clamp_min(EPS)).sum() if ctx.needs_input_grad[1] else None
        return grad_table, grad_log_scale


def scaled_unit_rows(table: Tensor, log_scale: Tensor) -> Tensor:
    """``exp(log_scale) * F.normalize(table, dim=-1)`` for a (V, D) ``table`` and a scalar ``log_scale``,
    equal to it up to float32 rounding in value and in both gradients (tests/test_kernels.py)."""
    if table.dim() != 2 or log_scale.dim() != 0:
        raise ValueError(f"scaled_unit_rows: needs a (V, D) table and a scalar log-scale, got shapes "
                         f"{tuple(table.shape)} and {tuple(log_scale.shape)}")
    return _ScaledUnitRows.apply(table, log_scale)
