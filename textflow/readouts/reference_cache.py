"""The reference rows a process has already scored: a sweep (``sample.py -m``) evaluates its held-out
and shuffled reference texts, and samples and scores its AR twin (``ar_twin=``), once, not once per
sweep point."""

from __future__ import annotations

from typing import Any, Callable

_REFERENCE_CACHE: dict[tuple, Any] = {}


def cached(key: tuple, compute: Callable[[], Any]) -> Any:
    """``compute()`` once per ``key`` in this process."""
    if key not in _REFERENCE_CACHE:
        _REFERENCE_CACHE[key] = compute()
    return _REFERENCE_CACHE[key]
