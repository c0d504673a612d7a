"""Which GEMM serves the CPU inference linears on this machine: measured once, then remembered
(docs/benchmarks.md, "Sampling at the machine's limit", tenth block).

:mod:`textflow.kernels.linear` has two inference paths that agree to float32 rounding: ``onednn`` (oneDNN's
GEMM on packed weights, bias fused) and ``mkl`` (PyTorch's own GEMM, MKL in the CPU wheels, then the
``separate`` GELU in place). Which one is faster depends on the CPU, and not in a way its name tells:
on the AVX-512 host oneDNN's square matmul ran about 20 % faster than MKL's; on one AVX2 host ("AMD EPYC")
the two were level and oneDNN won end to end; on another host of the same name MKL's GEMM ran level with
or up to 15 % faster than oneDNN's at the DiT's shapes, and a K = 4 ``ode`` batch took 10 % less time on
``mkl``.

So ``TEXTFLOW_CPU_LINEAR=auto`` (the default) times both on a DiT block's four linears at the sampling
shape (2,048 rows: qkv, proj, the MLP's two with its GELU), alternated in rounds, and takes ``mkl`` only
when it is at least :data:`MARGIN` faster; a near tie keeps ``onednn``. (One shape alone misleads: on the
host above the two GEMMs were level at 256 -> 1,024 and MKL clearly ahead at 1,024 -> 256.) The answer
is stored in ``cpu-linear.json`` under the cache folder (``TEXTFLOW_CACHE``, else ``~/.cache/textflow``),
keyed by the CPU (model, family, model number, stepping, the vector capability ATen uses), the torch
version and the thread count, so every later process on this machine takes the same path: a seeded
sample stays the same sample from run to run.
Delete the file, or name a backend in ``TEXTFLOW_CPU_LINEAR``, to choose again. On a shared host whose
speed drifts the answer depends on when it was measured: on the host above MKL led only while the host ran
fast, and a measurement in a slow stretch kept ``onednn``.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from textflow.io import atomic_write_json, default_cache_dir

CANDIDATES = ("onednn", "mkl")
MARGIN = 0.05  # mkl must take at most 95 % of onednn's time: a tie on a noisy host keeps onednn
ROUNDS = 9
WARMUP = 2  # rounds not timed: a fresh process's first calls run slower (the first also packs the weight)
CACHE_FILE = "cpu-linear.json"


def cache_path() -> Path:
    return default_cache_dir() / CACHE_FILE


def _cpuinfo() -> dict[str, str]:
    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "cpu family", "model", "stepping") and key not in fields:
                fields[key] = value.strip()
    except OSError:
        pass
    return fields


def machine_key() -> str:
    """What the choice depends on: the CPU, ATen's vector capability, torch's version and thread count."""
    info = _cpuinfo()
    cpu = "/".join(info.get(k, "?") for k in ("model name", "cpu family", "model", "stepping"))
    return (f"{cpu} | {torch.backends.cpu.get_cpu_capability()} | torch {torch.__version__} "
            f"| {torch.get_num_threads()} threads")


def choose(median_ms: dict[str, float]) -> str:
    """``mkl`` when its median time is at most ``1 - MARGIN`` of ``onednn``'s, else ``onednn``."""
    return "mkl" if median_ms["mkl"] <= (1 - MARGIN) * median_ms["onednn"] else "onednn"


# a DiT block's linears at the sampling shape (``dit_small``, batch 32 x 64): qkv, proj, the MLP's two
SHAPES = ((256, 768, False), (256, 256, False), (256, 1024, True), (1024, 256, False))  # (in, out, gelu)
ROWS = 2048


def measure(rounds: int = ROUNDS) -> dict[str, float]:
    """Median milliseconds of one DiT block's four linears (:data:`SHAPES` on :data:`ROWS` rows, with bias,
    the MLP's GELU included) on each candidate, alternated in ``rounds`` rounds after :data:`WARMUP`
    untimed ones, in one packing block."""
    from textflow.kernels import linear as kl

    gen = torch.Generator().manual_seed(0)
    layers = [(torch.randn(ROWS, fan_in, generator=gen),
               nn.Parameter(torch.randn(fan_out, fan_in, generator=gen) / fan_in ** 0.5, requires_grad=False),
               torch.randn(fan_out, generator=gen), gelu) for fan_in, fan_out, gelu in SHAPES]
    times = {name: [] for name in CANDIDATES}
    with torch.no_grad(), kl.reuse_packed_weights():
        for r in range(WARMUP + rounds):
            for name in CANDIDATES:
                start = time.perf_counter()
                for x, weight, bias, gelu in layers:
                    kl.linear_on(name, x, weight, bias, gelu=gelu)
                if r >= WARMUP:
                    times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def calibrated_cpu_backend() -> str:
    """This machine's backend for the CPU inference linears: the stored answer for :func:`machine_key`,
    else measured now (:func:`measure`, about 0.5 s) and stored (module docstring). ``onednn`` needs this
    torch build's oneDNN linear; without it the answer is ``mkl``, measured or not."""
    from textflow.kernels.linear import onednn_available

    if not onednn_available():
        return "mkl"
    path, key = cache_path(), machine_key()
    stored = _read(path).get(key)
    if isinstance(stored, dict) and stored.get("backend") in CANDIDATES:
        return stored["backend"]
    median_ms = measure()
    backend = choose(median_ms)
    try:  # re-read: another process may have stored its own machine's answer meanwhile
        atomic_write_json(path, {**_read(path), key: {"backend": backend, "median_ms": median_ms}})
    except OSError:
        pass  # a read-only cache folder: this process still uses the answer it measured
    return backend
