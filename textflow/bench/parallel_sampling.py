"""Data-parallel sampling (docs/benchmarks.md, "Past one machine"): ``python -m textflow.bench
parallel-sampling --devices 1,2``.

Sampling exchanges nothing between processes (every sample has its own seeded noise, so any split of the
samples gives the same texts), so data-parallel sampling is N independent processes, each drawing its
share: there is no collective to time, only the processes' contention for the machine (cores and memory
bandwidth on a CPU; nothing on one GPU per process). For each process count the benchmark starts that
many copies of ``bench scaling`` at once (one sequence length, one K; the flow's Euler ODE and the
KV-cached AR baseline at the width, depth and heads of a ``conf/backbone`` preset), each with ``threads``
torch threads (on CUDA each sees its own GPU), and reports the summed tokens/s with the scaling
efficiency ``tokens/s(n) / (n x tokens/s(1))`` for both models.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from textflow.errors import ConfigError

CONF_BACKBONES = Path(__file__).resolve().parents[2] / "conf" / "backbone"


def preset_dims(preset: str) -> dict:
    """``width``, ``depth`` and ``heads`` of ``conf/backbone/<preset>.yaml``."""
    from omegaconf import OmegaConf

    path = CONF_BACKBONES / f"{preset}.yaml"
    if not path.is_file():
        choices = ", ".join(sorted(p.stem for p in CONF_BACKBONES.glob("*.yaml")))
        raise ConfigError(f"--preset {preset!r} is not a backbone preset; choose one of {choices}")
    cfg = OmegaConf.load(path)
    return {"width": int(cfg.width), "depth": int(cfg.depth), "heads": int(cfg.heads)}


def _worker(out: Path, *, dims: dict, k: int, batch: int, seq_len: int, repeats: int, device: str) -> list[str]:
    return [sys.executable, "-m", "textflow.bench", "scaling", "--lengths", str(seq_len), "--steps", str(k),
            "--batch-size", str(batch), "--width", str(dims["width"]), "--depth", str(dims["depth"]),
            "--heads", str(dims["heads"]), "--repeats", str(repeats), "--device", device, "--out", str(out)]


def run(*, devices: list[int], preset: str = "dit_small", k: int = 4, batch: int = 32, seq_len: int = 64,
        threads: int = 1, repeats: int = 3, device: str = "cpu") -> list[dict]:
    if 1 not in devices:
        raise ConfigError(f"--devices {','.join(map(str, devices))} has no 1: the efficiency needs the "
                          "one-process run as its baseline")
    dims = preset_dims(preset)
    rows = []
    for n in sorted(set(devices)):
        with tempfile.TemporaryDirectory() as tmp:
            procs = []
            for i in range(n):
                env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
                if device == "cuda":
                    env["CUDA_VISIBLE_DEVICES"] = str(i)
                cmd = _worker(Path(tmp) / str(i), dims=dims, k=k, batch=batch, seq_len=seq_len, repeats=repeats,
                              device=device)
                procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                              text=True))
            errors = [p.communicate()[1] for p in procs]
            failed = [e for p, e in zip(procs, errors) if p.returncode != 0]
            if failed:
                raise RuntimeError(f"bench scaling with {n} process(es) failed:\n{failed[0][-3000:]}")
            shares = [json.loads(next((Path(tmp) / str(i)).glob("scaling-*.json")).read_text())["rows"][0]
                      for i in range(n)]
        rows.append({"devices": n, "threads_per_process": threads, "preset": preset, "K": k,
                     "batch_per_process": batch, "seq_len": seq_len,
                     "flow_tokens_per_s": sum(s["flow_tokens_per_s"] for s in shares),
                     "ar_tokens_per_s": sum(s["ar_tokens_per_s"] for s in shares)})
    for key in ("flow", "ar"):
        base = rows[0][f"{key}_tokens_per_s"]
        for row in rows:
            row[f"{key}_efficiency"] = row[f"{key}_tokens_per_s"] / (row["devices"] * base)
    return rows
