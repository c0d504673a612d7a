"""Warm-up, repeat, summarise: the timing harness every benchmark uses."""

from __future__ import annotations

import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from textflow.io import atomic_write_json


def time_call(fn: Callable[[], object], *, warmup: int = 1, repeats: int = 3, desc: str = "") -> dict:
    """Median and spread (min, max) of ``repeats`` timed calls after ``warmup`` untimed ones."""
    return time_round_robin({"call": fn}, warmup=warmup, repeats=repeats, desc=desc or "timing")["call"]


def time_round_robin(fns: dict[str, Callable[[], object]], *, warmup: int = 1, repeats: int = 3,
                     desc: str = "", keep_times: bool = False) -> dict[str, dict]:
    """:func:`time_call` of several callables in rounds: every round calls each once, starting one further
    along the list than the round before, so a drift of the machine's speed over the run (other tenants of
    a shared host) reaches every callable alike instead of whichever ran last (docs/benchmarks.md,
    "Sampling at the machine's limit"). ``keep_times``: each summary also holds ``times_s``, the seconds
    of every round in round order, for ratios taken round by round."""
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for turn in tqdm(range(repeats), desc=desc or "timing rounds", leave=False):
        for name in names[turn % len(names):] + names[:turn % len(names)]:
            times[name].append(seconds(fns[name]))
    return {name: {**_summary(ts), **({"times_s": ts} if keep_times else {})} for name, ts in times.items()}


def seconds(fn: Callable[[], object]) -> float:
    """Wall seconds of one call (CUDA synchronised)."""
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def _summary(times: list[float]) -> dict:
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "repeats": len(times)}


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what ``platform`` knows. Sessions of this
    project land on more than one CPU kind (an AVX-512 Intel host, an AVX2 AMD EPYC), whose peaks differ
    by 2x, so every result says which it ran on."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    return {"python": platform.python_version(), "torch": torch.__version__, "cpu_threads": torch.get_num_threads(),
            "processor": platform.processor() or platform.machine(), "cpu_model": cpu_model(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def write_result(name: str, rows: list[dict], out_dir: str | Path, settings: dict) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H-%M-%SZ")
    path = Path(out_dir) / f"{name}-{stamp}.json"
    atomic_write_json(path, {"benchmark": name, "date": stamp, "machine": machine(), "settings": settings,
                             "rows": rows})
    return path


def print_table(rows: list[dict]) -> None:
    """The rows as an aligned table; list-valued columns (per-round raw times) stay in the JSON only."""
    if not rows:
        return
    cols = [c for c in rows[0] if not isinstance(rows[0][c], list)]
    width = {c: max(len(c), *(len(f"{r.get(c, ''):.4g}" if isinstance(r.get(c), float) else str(r.get(c, '')))
                              for r in rows)) for c in cols}
    print("  ".join(c.rjust(width[c]) for c in cols))
    for r in rows:
        cells = [f"{r[c]:.4g}" if isinstance(r.get(c), float) else str(r.get(c, "")) for c in cols]
        print("  ".join(cell.rjust(width[c]) for cell, c in zip(cells, cols)))
