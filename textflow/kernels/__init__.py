"""Numerical kernels. Memory-bounded ones for large vocabularies (docs/benchmarks.md, "Large vocabularies"):
computations over (positions x vocabulary) logits done a chunk of rows or a cache-sized tile at a time,
and the tied readout's normalised table with its own backward (:mod:`textflow.kernels.unit_rows`); their
matmuls on a CPU through oneDNN (:mod:`textflow.kernels.readout_gemm`). And the CPU inference linears of
:mod:`textflow.kernels.linear` (oneDNN with the GELU fused; "Sampling at the machine's limit")."""

from textflow.kernels.chunking import cache_chunk_elements, chunk_budget, chunk_elements
from textflow.kernels.cross_entropy import linear_cross_entropy
from textflow.kernels.perturbations import perturbation_stats
from textflow.kernels.readout_chunks import (readout_argmax, readout_chunks, readout_entropy, readout_token_stats,
                                            readout_top2, readout_topk, row_slices, selected_logits, top2_probs)
from textflow.kernels.unit_rows import scaled_unit_rows

__all__ = ["cache_chunk_elements", "chunk_budget", "chunk_elements", "linear_cross_entropy", "perturbation_stats",
           "readout_argmax", "readout_chunks", "readout_entropy", "readout_token_stats", "readout_top2", "readout_topk",
           "row_slices", "scaled_unit_rows", "selected_logits", "top2_probs"]
