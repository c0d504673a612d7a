"""The three matmuls of the chunked readout cross-entropy, on a CPU through oneDNN (docs/benchmarks.md,
"Large vocabularies").

A readout's matmuls are thin: a chunk of positions with D features (64 for the embedding latents)
against a table of V tokens. PyTorch's CPU GEMM (MKL in the CPU wheels) runs these shapes far from the
machine's peak; oneDNN's runs them near it. On the Zen 2 host, 256 positions x 64 features x 131,072
tokens (``python docs/bench/readout_gemm_probe.py``; docs/bench/json/readout-gemm-probe-2026-12-01-zen2.txt):
the logits 76.5 ms through ``torch.addmm`` against 33.1 ms through oneDNN (bias fused), ``probs @ W``
40.0 against 32.8 ms, and the table's gradient with the bias's column sums 82.4 ms against 37.8 ms for
its transpose ``[f, 1]^T probs`` through oneDNN, the bias's gradient riding along as one more output row
(:class:`TableGradient`).

:func:`gemm_backend` picks ``onednn`` where :mod:`textflow.kernels.linear` runs its inference linears on
oneDNN (``TEXTFLOW_CPU_LINEAR``, measured per machine by default) and the matmul is large enough to pay
its fixed cost; ``aten`` (PyTorch's own matmuls, any device and dtype) elsewhere, under
``torch.compile`` and where autograd records the product. The chunked readouts' column tiles
(:func:`textflow.kernels.online.column_tiles`: diagnostics, decoding) take the same choice. The two agree
to float32 rounding (a different summation order).
"""

from __future__ import annotations

import torch
from torch import Tensor

from textflow.kernels.linear import MIN_MACS, cpu_linear_backend, onednn_available


def gemm_backend(features: Tensor, weight: Tensor) -> str:
    """``onednn`` or ``aten`` for the matmuls of ``features`` (n, D) against ``weight`` (V, D)."""
    if features.device.type != "cpu" or features.dtype != torch.float32 or weight.dtype != torch.float32:
        return "aten"
    if features.numel() * weight.shape[0] < MIN_MACS or torch.compiler.is_compiling():
        return "aten"
    if torch.is_grad_enabled() and (features.requires_grad or weight.requires_grad):
        return "aten"  # oneDNN's op has no backward
    return "onednn" if cpu_linear_backend() == "onednn" and onednn_available() else "aten"


def _onednn(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias`` by oneDNN's GEMM (``weight`` may be a transposed view)."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


def logits(features: Tensor, weight: Tensor, bias: Tensor | None, backend: str) -> Tensor:
    """``features @ weight.T + bias``: (n, V)."""
    if backend == "onednn":
        return _onednn(features, weight, bias)
    return features @ weight.T if bias is None else torch.addmm(bias, features, weight.T)


def rows_times_table(rows: Tensor, weight: Tensor, backend: str) -> Tensor:
    """``rows @ weight``: (n, V) @ (V, D) -> (n, D), the features' gradient."""
    return _onednn(rows, weight.T) if backend == "onednn" else rows @ weight


def add_rows_times_table(out: Tensor, rows: Tensor, weight: Tensor, backend: str) -> None:
    """``out += rows @ weight`` ((n, c) @ (c, D)): a tile's share of the features' gradient."""
    if backend == "onednn":
        out.add_(_onednn(rows, weight.T))
    else:
        out.addmm_(rows, weight)


def add_rows_transposed_times(out: Tensor, rows: Tensor, features: Tensor, backend: str) -> None:
    """``out += rows^T @ features`` ((c, n) @ (n, D)): a tile's share of the table's gradient."""
    if backend == "onednn":
        out.add_(_onednn(features.T.contiguous(), rows.T).T)
    else:
        out.addmm_(rows.T, features)


class TableGradient:
    """The table's and the bias's gradients, ``delta^T f`` (V, D) and ``delta^T 1`` (V,), summed over row
    chunks, each chunk's ``delta`` (n, V) given unscaled with its rows' factors ``share`` (n,).

    On oneDNN the sum is kept transposed, ``[share f, share]^T delta`` (D + 1, V), the bias's gradient its
    last row, and turned once at the end; on PyTorch's GEMM the (V, D) layout is summed directly (``addmm_``,
    ``addmv_``): the transposed product ran slower there at D = 256 (``python
    docs/bench/readout_gemm_probe.py 50257 256``)."""

    def __init__(self, *, backend: str, weight: bool, bias: bool):
        self.backend, self.weight, self.bias = backend, weight, bias
        self._sums: list[Tensor | None] = [None, None]  # oneDNN: the transposed sum; else (V, D), (V,)

    def add(self, delta: Tensor, features: Tensor, share: Tensor) -> None:
        scaled = features * share[:, None] if self.weight else None
        if self.backend == "onednn":
            left = torch.cat([t for t in (scaled, share[:, None] if self.bias else None) if t is not None], 1)
            product = _onednn(left.T.contiguous(), delta.T)
            self._sums[0] = product if self._sums[0] is None else self._sums[0].add_(product)
            return
        for i, (wanted, right) in enumerate(((self.weight, scaled), (self.bias, share))):
            if wanted:
                total = self._sums[i]
                self._sums[i] = (delta.T @ right if total is None else
                                 total.addmm_(delta.T, right) if i == 0 else total.addmv_(delta.T, right))

    def result(self) -> tuple[Tensor | None, Tensor | None]:
        """``(table's gradient or None, bias's gradient or None)``, as asked for."""
        if self.backend != "onednn":
            return self._sums[0], self._sums[1]
        total = self._sums[0]
        return (total[:-1 if self.bias else None].T.contiguous() if self.weight else None,
                total[-1].clone() if self.bias else None)
