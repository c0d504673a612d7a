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
"""

from __future__ import annotations

import torch
from torch import Tensor

EPS = 1e-12  # F.normalize's default: a row shorter than this is divided by EPS instead


class _ScaledUnitRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx, table: Tensor, log_scale: Tensor) -> Tensor:
        norms = torch.linalg.vector_norm(table, dim=-1)
        scale = log_scale.exp()
        clamped = norms.clamp_min(EPS)
        ctx.save_for_backward(table, clamped, scale, norms > EPS)
        return table * (scale / clamped)[:, None]

    @staticmethod
    def backward(ctx, grad: Tensor):
        table, norms, scale, unclamped = ctx.saved_tensors
        r = torch.linalg.vecdot(grad, table)  # sum_d G E, per row
        grad_table = grad_log_scale = None
        if ctx.needs_input_grad[0]:
            along = torch.where(unclamped, r / norms.square(), torch.zeros_like(r))
            grad_table = torch.addcmul(grad, table, along[:, None], value=-1.0).mul_((scale / norms)[:, None])
        if ctx.needs_input_grad[1]:
            grad_log_scale = scale * (r / norms).sum()
        return grad_table, grad_log_scale


def scaled_unit_rows(table: Tensor, log_scale: Tensor) -> Tensor:
    """``exp(log_scale) * F.normalize(table, dim=-1)`` for a (V, D) ``table`` and a scalar ``log_scale``,
    equal to it up to float32 rounding in value and in both gradients (tests/test_kernels.py)."""
    if table.dim() != 2 or log_scale.dim() != 0:
        raise ValueError(f"scaled_unit_rows: needs a (V, D) table and a scalar log-scale, got shapes "
                         f"{tuple(table.shape)} and {tuple(log_scale.shape)}")
    return _ScaledUnitRows.apply(table, log_scale)
