"""How many logits one chunk may hold (docs/benchmarks.md, "Large vocabularies")."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from textflow.checks import require_int

DEFAULT_CHUNK_ELEMENTS = 1 << 22  # floats per chunk of logits (16 MiB in float32; docs/benchmarks.md)
# floats per tile for a reduction that reads its logits several times (max, exp, sum; top-2 with a
# log-sum-exp): 4 MiB in float32 stays in the CPU's cache between the passes (docs/benchmarks.md)
CACHE_CHUNK_ELEMENTS = 1 << 20
_budget = [DEFAULT_CHUNK_ELEMENTS]


def chunk_elements() -> int:
    """The current budget of logits per chunk."""
    return _budget[0]


def cache_chunk_elements() -> int:
    """The budget of a multi-pass reduction: the cache-sized chunk, or less under :func:`chunk_budget`."""
    return min(CACHE_CHUNK_ELEMENTS, _budget[0])


@contextmanager
def chunk_budget(elements: int) -> Iterator[None]:
    """Run a block with another budget (tests force many small chunks with it)."""
    previous = _budget[0]
    _budget[0] = require_int("chunk_elements", elements, low=1)
    try:
        yield
    finally:
        _budget[0] = previous
