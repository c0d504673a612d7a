"""The reference rows a process has already scored: a sweep (``sample.py -m``) evaluates its held-out
and shuffled reference texts once, not once per sweep point."""

from __future__ import annotations

from typing import Callable

_REFERENCE_CACHE: dict[tuple, tuple] = {}


def cached(key: tuple, compute: Callable[[], tuple]) -> tuple:
    """``compute()`` once per ``key`` in this process."""
    if key not in _REFERENCE_CACHE:
        _REFERENCE_CACHE[key] = compute()
    return _REFERENCE_CACHE[key]
