"""Keep freed memory in the process on Linux/glibc (docs/benchmarks.md, "Sampling at the machine's limit").

PyTorch's CPU allocator hands every tensor to ``malloc``. glibc serves large requests with fresh ``mmap``
pages and returns them on ``free``, so a tensor of a few MB allocated at every layer of every step pays
page faults each time (they show as system time). Raising glibc's mmap and trim thresholds
(``mallopt(M_MMAP_THRESHOLD)``, ``mallopt(M_TRIM_THRESHOLD)``) keeps freed blocks in the heap for the
next tensor of that size, as ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` would. The cost is
that the process keeps its peak heap until it exits. Measured on this project's 2-core CPU: `ode` at
K = 4 on the quickstart-size model 0.52 s -> 0.40 s per batch (docs/benchmarks.md, "Sampling at the
machine's limit"; ``TEXTFLOW_MALLOC=default`` turns the setting off to compare).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers (malloc.h)
THRESHOLD = 1 << 30  # 1 GiB: every tensor of a research-sized model stays in the heap
_done = [False]


def keep_freed_memory() -> bool:
    """Set the thresholds once per process; True when glibc accepted them, False elsewhere (macOS, musl,
    Windows) or when ``TEXTFLOW_MALLOC=default`` asks to leave the allocator alone."""
    if _done[0]:
        return True
    if os.environ.get("TEXTFLOW_MALLOC", "") == "default":
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(M_MMAP_THRESHOLD, THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, THRESHOLD) == 1
    _done[0] = ok
    return ok
