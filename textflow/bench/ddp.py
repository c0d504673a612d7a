"""Data-parallel scaling of training (docs/benchmarks.md, "Past one machine").

Runs ``python -m textflow.bench train`` once per process count in ``devices`` (each run a fresh
process; Lightning DDP launches the others: gloo on a CPU, NCCL on GPUs), with the same per-process
batch and ``threads`` torch threads per process, and reports each run's tokens/s with the scaling
efficiency ``tokens/s(n) / (n x tokens/s(1))`` against the one-process run of the same invocation.
On a CPU the processes share the machine's cores, so give ``threads`` x max(devices) <= cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from textflow.errors import ConfigError


def run(*, devices: list[int], preset: str = "dit_base", steps: int = 20, batch: int = 16, seq_len: int = 64,
        threads: int = 1, device: str = "cpu", overrides: list[str] = (), cache_dir: str | None = None) -> list[dict]:
    if 1 not in devices:
        raise ConfigError(f"--devices {','.join(map(str, devices))} has no 1: the efficiency needs the "
                          "one-process run as its baseline")
    rows = []
    for n in sorted(set(devices)):
        with tempfile.TemporaryDirectory() as out:
            cmd = [sys.executable, "-m", "textflow.bench", "train", "--preset", preset, "--steps", str(steps),
                   "--batch", str(batch), "--seq-len", str(seq_len), "--devices", str(n), "--device", device,
                   "--out", out]
            if cache_dir:
                cmd += ["--cache-dir", cache_dir]
            for o in overrides:
                cmd += ["--override", o]
            env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"bench train with {n} process(es) failed:\n{proc.stderr[-3000:]}")
            results = list(Path(out).glob("train-*.json"))
            if len(results) != 1:
                raise RuntimeError(f"bench train with {n} process(es) wrote {len(results)} results, expected 1")
            row = json.loads(results[0].read_text())["rows"][0]
        rows.append({"devices": n, "threads_per_process": threads, "preset": preset, "batch_per_process": batch,
                     "seq_len": seq_len, "step_s": row["step_s"], "tokens_per_s": row["tokens_per_s"],
                     "mfu": row["mfu"]})
    base = rows[0]["tokens_per_s"]
    for row in rows:
        row["efficiency"] = row["tokens_per_s"] / (row["devices"] * base)
    return rows
