"""Cross-entropy of a linear readout without the (positions x vocabulary) logits tensor (docs/benchmarks.md,
"Large vocabularies").

``loss = mean_i [logsumexp_v(f_i . w_v + b_v) - (f_i . w_{y_i} + b_{y_i})]``

The rows ``f_i`` are processed in chunks sized so that one chunk's logits stay small
(:func:`textflow.kernels.chunking.chunk_elements` floats); the gradient with respect to ``f``, ``W``
and ``b`` is computed chunk by chunk in the forward pass (``softmax - onehot`` never outlives its
chunk) and scaled by the incoming gradient in the backward pass. At a 50 k vocabulary this replaces the full float32 logits, their softmax and their gradient
(three 200 MB tensors for 1,024 positions) with one chunk at a time, and the matmuls carry the bias
(``addmm``) so no elementwise pass over the logits is left but the softmax itself. Logits are computed
in float32 whatever the input dtype, as ``F.cross_entropy(logits.float(), ...)`` would see them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from textflow.kernels.chunking import chunk_elements
from textflow.kernels.tile_ops import exp_, tile_top


def _chunk_logits(features: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    if bias is None:
        return features @ weight.T
    return torch.addmm(bias, features, weight.T)


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, features: Tensor, weight: Tensor, bias: Tensor | None, targets: Tensor,
                chunk_rows: int, track: bool) -> tuple[Tensor, Tensor]:
        n = features.shape[0]
        f32, w32 = features.float(), weight.float()
        b32 = None if bias is None else bias.float()
        want = tuple(track and w for w in ctx.needs_input_grad)  # nothing to keep outside autograd
        grad_f = torch.empty_like(f32) if want[0] else None
        grad_w = torch.zeros_like(w32) if want[1] else None
        grad_b = torch.zeros_like(b32) if b32 is not None and want[2] else None
        total = torch.zeros((), dtype=torch.float64, device=features.device)
        correct = torch.zeros((), dtype=torch.int64, device=features.device)
        for start in range(0, n, chunk_rows):
            rows = slice(start, min(start + chunk_rows, n))
            f, y = f32[rows], targets[rows]
            logits = _chunk_logits(f, w32, b32)
            picked = logits.gather(1, y[:, None]).squeeze(1)
            top, argmax = tile_top(logits, 1)  # the row max (for a stable exp) and the argmax, (n, 1) each
            correct += (argmax[:, 0] == y).sum()
            probs = exp_(logits.sub_(top))  # exp(l - max), in place of the chunk's logits
            norm = probs.sum(-1)
            total += (top[:, 0] + norm.log() - picked).sum(dtype=torch.float64)
            if any(want[:3]):
                probs.mul_((1.0 / (norm * n))[:, None])  # softmax / n
                probs[torch.arange(len(y), device=y.device), y] -= 1.0 / n  # d mean loss / d logits
                if grad_f is not None:
                    torch.mm(probs, w32, out=grad_f[rows])
                if grad_w is not None:
                    grad_w.addmm_(probs.T, f)
                if grad_b is not None:
                    grad_b += probs.sum(0)
        ctx.save_for_backward(grad_f, grad_w, grad_b)
        ctx.dtypes = (features.dtype, weight.dtype, None if bias is None else bias.dtype)
        ctx.mark_non_differentiable(correct)
        return (total / max(n, 1)).float(), correct

    @staticmethod
    def backward(ctx, grad_loss: Tensor, _grad_correct: Tensor):
        grads = []
        for g, dtype in zip(ctx.saved_tensors, ctx.dtypes):
            grads.append(None if g is None else (g * grad_loss).to(dtype))
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
    chunk_rows = max(1, chunk_elements() // weight.shape[0])
    loss, correct = _LinearCrossEntropy.apply(flat, weight, bias, y, chunk_rows, track)
    return loss, correct.float() / y.shape[0]
