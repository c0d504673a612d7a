"""How many logits one chunk may hold (docs/benchmarks.md, "Large vocabularies")."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from textflow.checks import require_int

DEFAULT_CHUNK_ELEMENTS = 1 << 22  # floats per chunk of logits (16 MiB in float32; docs/benchmarks.md)
# floats per tile for a reduction that reads its logits several times (max, exp, sum; top-2 with a
# log-sum-exp): 4 MiB in float32 stays in the CPU's cache between the passes (docs/benchmarks.md)
CACHE_CHUNK_ELEMENTS = 1 << 20
# floats per row chunk of the training cross-entropy (128 MiB in float32): its whole-row chunks need about
# 500 rows to beat the two-pass tiles (at 50 k tokens x 256 features and 4,096 positions, 512-row
# chunks take 3.3 s against 4.5 s for 83-row ones and 4.4 s for the tiles; docs/benchmarks.md)
CE_CHUNK_ELEMENTS = 1 << 25
_budget: list[int | None] = [None]  # None: each consumer's default


def chunk_elements() -> int:
    """The current budget of logits per chunk."""
    return DEFAULT_CHUNK_ELEMENTS if _budget[0] is None else _budget[0]


def ce_chunk_elements() -> int:
    """The training cross-entropy's budget: :data:`CE_CHUNK_ELEMENTS`, or what :func:`chunk_budget` sets."""
    return CE_CHUNK_ELEMENTS if _budget[0] is None else _budget[0]


def cache_chunk_elements() -> int:
    """The budget of a multi-pass reduction: the cache-sized chunk, or less under :func:`chunk_budget`."""
    return min(CACHE_CHUNK_ELEMENTS, chunk_elements())


@contextmanager
def chunk_budget(elements: int) -> Iterator[None]:
    """Run a block with another budget, for every consumer (tests force many small chunks with it)."""
    previous = _budget[0]
    _budget[0] = require_int("chunk_elements", elements, low=1)
    try:
        yield
    finally:
        _budget[0] = previous
