"""Which inference path serves the CPU linears on this machine: measured once, then remembered
(docs/benchmarks.md, "Sampling at the machine's limit", tenth and eleventh blocks).

:mod:`textflow.kernels.linear` has three inference paths that agree to float32 rounding: ``onednn`` with
the MLP's GELU ``separate`` (oneDNN's GEMM on packed weights, bias fused, then ``tanh_gelu_`` in place),
``onednn`` with the GELU ``fused`` (oneDNN's tanh post-op inside the GEMM), and ``mkl`` (PyTorch's own
GEMM, MKL in the CPU wheels, then ``tanh_gelu_``). Which is fastest depends on the CPU, and not in a way
its name tells: on the AVX-512 host oneDNN's square matmul ran about 20 % faster than MKL's and its fused
GELU was the faster placement; on three AVX2 hosts, all "AMD EPYC", oneDNN's tanh post-op was the slow
part of the MLP's first linear (16.4 against 12.9 ms, 14.5 against 9.8 ms), and MKL's GEMM was 10-25 %
slower than oneDNN's on one (Zen 2), level on another, and up to 15 % faster on the third (Zen 3), where a
K = 4 ``ode`` batch took 10 % less time on ``mkl``.

So ``TEXTFLOW_CPU_LINEAR=auto`` and ``TEXTFLOW_CPU_GELU=auto`` (the defaults) time the three on a DiT
block's four linears at the sampling shape (2,048 rows: qkv, proj, the MLP's two with its GELU),
alternated in rounds (:func:`measure`), and :func:`choose` decides: a placement wins only when it is at
least :data:`MARGIN` faster than the other (a near tie keeps the CPU's default, ``fused`` on AVX-512 and
``separate`` elsewhere), then ``mkl`` only when it is at least :data:`MARGIN` faster than ``onednn`` with
that placement. (One shape alone misleads: on the Zen 3 host the two GEMMs were level at 256 -> 1,024 and
MKL clearly ahead at 1,024 -> 256.) The answer is stored in ``cpu-linear.json`` under the cache folder
(``TEXTFLOW_CACHE``, else ``~/.cache/textflow``), keyed by the CPU (model, family, model number, stepping,
the vector capability ATen uses), the torch version and the thread count, so every later process on this
machine takes the same path: a seeded sample stays the same sample from run to run. An answer stored
before the placement was measured keeps its backend and the CPU's default placement, the path it ran.
Delete the file, or name a backend in ``TEXTFLOW_CPU_LINEAR`` and a placement in ``TEXTFLOW_CPU_GELU``,
to choose again. On a shared host whose speed drifts the answer depends on when it was measured: on the
Zen 3 host MKL led only while the host ran fast, and a measurement in a slow stretch kept ``onednn``.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from textflow.io import atomic_write_json, default_cache_dir

BACKENDS = ("onednn", "mkl")
PLACEMENTS = ("fused", "separate")
# the paths timed, by name: (backend, the oneDNN path's GELU placement; mkl's GELU is always separate)
PATHS = {"onednn/separate": ("onednn", "separate"), "onednn/fused": ("onednn", "fused"), "mkl": ("mkl", None)}
MARGIN = 0.05  # a winner takes at most 95 % of the other's time: a tie on a noisy host keeps the default
ROUNDS = 9
WARMUP = 2  # rounds not timed: a fresh process's first calls run slower (the first also packs the weight)
CACHE_FILE = "cpu-linear.json"
_unstored: dict[str, dict[str, str]] = {}  # answers measured by this process that its cache could not keep


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


def default_placement() -> str:
    """The GELU placement a near tie keeps: ``fused`` where ATen reports AVX-512 (the host where fusion was
    measured as the faster), ``separate`` elsewhere."""
    return "fused" if torch.backends.cpu.get_cpu_capability().startswith("AVX512") else "separate"


def _clearly_faster(a: float, b: float) -> bool:
    return a <= (1 - MARGIN) * b


def choose(median_ms: dict[str, float]) -> dict[str, str]:
    """``{"backend", "gelu"}`` from the median times of :data:`PATHS`: the placement that is clearly faster
    (else :func:`default_placement`), then ``mkl`` when it is clearly faster than ``onednn`` with that
    placement, else ``onednn``."""
    fused, separate = median_ms["onednn/fused"], median_ms["onednn/separate"]
    gelu = ("fused" if _clearly_faster(fused, separate) else "separate" if _clearly_faster(separate, fused)
            else default_placement())
    backend = "mkl" if _clearly_faster(median_ms["mkl"], median_ms[f"onednn/{gelu}"]) else "onednn"
    return {"backend": backend, "gelu": gelu}


# a DiT block's linears at the sampling shape (``dit_small``, batch 32 x 64): qkv, proj, the MLP's two
SHAPES = ((256, 768, False), (256, 256, False), (256, 1024, True), (1024, 256, False))  # (in, out, gelu)
ROWS = 2048


def measure(rounds: int = ROUNDS) -> dict[str, float]:
    """Median milliseconds of one DiT block's four linears (:data:`SHAPES` on :data:`ROWS` rows, with bias,
    the MLP's GELU included) on each of :data:`PATHS`, alternated in ``rounds`` rounds after
    :data:`WARMUP` untimed ones, in one packing block."""
    from textflow.kernels import linear as kl

    gen = torch.Generator().manual_seed(0)
    layers = [(torch.randn(ROWS, fan_in, generator=gen),
               nn.Parameter(torch.randn(fan_out, fan_in, generator=gen) / fan_in ** 0.5, requires_grad=False),
               torch.randn(fan_out, generator=gen), gelu) for fan_in, fan_out, gelu in SHAPES]
    times = {name: [] for name in PATHS}
    with torch.no_grad(), kl.reuse_packed_weights():
        for r in range(WARMUP + rounds):
            for name, (backend, placement) in PATHS.items():
                start = time.perf_counter()
                for x, weight, bias, gelu in layers:
                    kl.linear_on(backend, x, weight, bias, gelu=gelu, placement=placement)
                if r >= WARMUP:
                    times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def stored_choice() -> dict[str, str] | None:
    """The ``{"backend", "gelu"}`` stored for :func:`machine_key` (or kept by this process where the cache
    could not be written), None when there is none. An answer stored before the placement was measured gets
    :func:`default_placement`, the path it ran."""
    key = machine_key()
    stored = _read(cache_path()).get(key, _unstored.get(key))
    if not isinstance(stored, dict) or stored.get("backend") not in BACKENDS:
        return None
    gelu = stored.get("gelu")
    return {"backend": stored["backend"], "gelu": gelu if gelu in PLACEMENTS else default_placement()}


def store(choice: dict[str, str], median_ms: dict[str, float]) -> None:
    """Store ``choice`` (with the times it was chosen from) as this machine's answer, keeping other
    machines' answers; where the cache folder cannot be written, this process keeps it."""
    path, key = cache_path(), machine_key()
    try:  # re-read: another process may have stored its own machine's answer meanwhile
        atomic_write_json(path, {**_read(path), key: {**choice, "median_ms": median_ms}})
    except OSError:  # a read-only cache folder: this process still uses the answer it measured, once
        _unstored[key] = choice


def calibrated_cpu_choice() -> dict[str, str]:
    """This machine's ``{"backend", "gelu"}`` for the CPU inference linears: :func:`stored_choice`, else
    measured now (:func:`measure`, about 1 s) and stored (module docstring; ``python -m textflow.bench
    calibrate`` measures again and shows both). ``onednn`` needs this torch build's oneDNN linear; without
    it the answer is ``mkl`` with the default placement (which then serves nothing), measured or not."""
    from textflow.kernels.linear import onednn_available

    if not onednn_available():
        return {"backend": "mkl", "gelu": default_placement()}
    stored = stored_choice()
    if stored is not None:
        return stored
    median_ms = measure()
    choice = choose(median_ms)
    store(choice, median_ms)
    return choice


def calibrated_cpu_backend() -> str:
    """The backend of :func:`calibrated_cpu_choice`: ``onednn`` or ``mkl``."""
    return calibrated_cpu_choice()["backend"]


def calibrated_gelu_placement() -> str:
    """The oneDNN path's GELU placement of :func:`calibrated_cpu_choice`: ``fused`` or ``separate``."""
    return calibrated_cpu_choice()["gelu"]
