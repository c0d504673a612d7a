"""Sampling throughput: tokens/s of each sampler at each K on a trained checkpoint (same noise, same
batch), with NFE read from the denoiser, and the FLOP/s it achieves against the machine's matmul peak.

Model FLOPs of a generation: ``nfe`` backbone forward passes (:func:`textflow.bench.train.backbone_forward_flops`)
plus one readout matmul per readout call, counted by wrapping the denoiser's readout (the final decode;
``commit`` and ``adaptive`` also read the logits of ``x_hat`` at every step). The rows are timed in rounds,
one batch of every row per round (:func:`textflow.bench.runner.time_round_robin`), so their ratios
(``commit``'s time per call against ``ode``'s) are not skewed by a shared host that slows down during the
run. The peak is timed in the same rounds: each round also runs every GEMM the machine offers
(:func:`textflow.bench.train.peak_gemms`: PyTorch's and, on a CPU, oneDNN's) as the best of
:data:`PEAK_CALLS` large matmuls, and ``fraction_of_peak`` is the median over rounds of each round's
achieved FLOP/s against that round's fastest GEMM: a ratio of two numbers measured seconds apart, which a
peak timed once before the run is not on a host whose speed drifts by a third (docs/benchmarks.md,
"Sampling at the machine's limit")."""

from __future__ import annotations

import statistics

import torch

from textflow.bench.runner import seconds, time_round_robin
from textflow.bench.train import backbone_forward_flops, peak_gemms, readout_forward_flops
from textflow.checkpoint import load_run
from textflow.cli import pick_device
from textflow.errors import ConfigError
from textflow.kernels.linear import (cpu_gelu_placement, cpu_linear_backend, reuse_packed_weights,
                                     use_cpu_linear)
from textflow.sampling.generate import generate
from textflow.samplers import Sampler
from textflow.samplers.spec import parse_sampler


PEAK_CALLS = 3  # matmuls per GEMM per round; the round's peak is the fastest of them


class PeakProbe:
    """A round-robin entry that runs one GEMM :data:`PEAK_CALLS` times and records the best rate
    (``flops`` per second) of each call of itself, warm-up calls included (``rates``)."""

    def __init__(self, gemm, flops: float):
        self.gemm, self.flops, self.rates = gemm, flops, []

    def __call__(self):
        self.rates.append(self.flops / min(seconds(self.gemm) for _ in range(PEAK_CALLS)))


class ReadoutCounter:
    """Wraps a denoiser's ``readout`` and its linear ``readout_head`` and counts the positions they decode
    (the chunked kernels of :mod:`textflow.kernels` score the logits from the head without ``readout``)."""

    def __init__(self, den):
        self.positions, self._readout, self._head = 0, den.readout, getattr(den, "readout_head", None)
        den.readout = self
        if self._head is not None:
            den.readout_head = self.head

    def __call__(self, x):
        self.positions += x.shape[0] * x.shape[1]
        return self._readout(x)

    def head(self, x):
        parts = self._head(x)
        if parts is not None:  # without a head the kernels fall back to ``readout``, counted there
            self.positions += x.shape[0] * x.shape[1]
        return parts


def run(*, ckpt: str, samplers: list[str], steps: list[int], batch_size: int = 32, repeats: int = 3,
        compile: bool = False, device: str = "cpu", bf16: bool = False, cpu_linear: str | None = None) -> list[dict]:
    """One row per sampler spec (:func:`textflow.samplers.spec.parse_sampler`) and K. ``compile``: ``torch.compile`` the
    backbone first (the first, untimed call pays the compilation). ``device``: ``cpu``, ``cuda``, ``cuda:N`` or
    ``auto``; on CUDA the peak is an 8192³ matmul in the sampling dtype, and ``bf16`` samples under bf16
    autocast as ``sample.py precision=bf16`` does (CUDA only). ``cpu_linear``: ``onednn``, ``mkl`` or
    ``aten``, the CPU inference linears (:mod:`textflow.kernels.linear`; default: ``TEXTFLOW_CPU_LINEAR``,
    else this machine's calibrated choice)."""
    dev = pick_device(device)
    if bf16 and dev.type != "cuda":
        raise ConfigError(f"--bf16 samples under CUDA autocast; it needs --device cuda, not {device!r}")
    loaded = load_run(ckpt)
    loaded.module.to(dev)
    seq_len = int(loaded.info["seq_len"])
    n = 8192 if dev.type == "cuda" else 2048
    probes = {name: PeakProbe(gemm, 2 * n**3)
              for name, gemm in peak_gemms(n, dtype=torch.bfloat16 if bf16 else torch.float32, device=dev).items()}
    with use_cpu_linear(cpu_linear):
        cases = {(spec, k): _case(loaded, spec, k, dev=dev, seq_len=seq_len, batch_size=batch_size,
                                  compile=compile, bf16=bf16) for spec in samplers for k in steps}
        # one packing block (steady state: weights reordered for oneDNN once, as over a sampling run's
        # batches); every round draws one batch per row and times every peak GEMM, so a slower stretch of a
        # shared host reaches all rows and the peak alike
        calls = {**{key: case[1] for key, case in cases.items()}, **{("peak", name): p for name, p in probes.items()}}
        with reuse_packed_weights():
            timings = time_round_robin(calls, warmup=1, repeats=repeats, desc="sampling rounds", keep_times=True)
        peaks = {name: probe.rates[-repeats:] for name, probe in probes.items()}  # per round, warm-up dropped
        return [_row(*case, timing=timings[key], spec=key[0], k=key[1], dev=dev, batch_size=batch_size,
                     seq_len=seq_len, compile=compile, bf16=bf16, peaks=peaks)
                for key, case in cases.items()]


def _case(loaded, spec: str, k: int, *, dev, seq_len: int, batch_size: int, compile: bool, bf16: bool):
    """``(denoiser, once)`` for ``spec`` at K = ``k``: ``once()`` draws one batch from fixed noise."""
    name, knobs = parse_sampler(spec)
    sampler = Sampler(name=name, steps=k, **knobs)
    den = sampler.denoiser(loaded, use_ema=True)
    if bf16:
        den.autocast_dtype = torch.bfloat16
    if compile:
        den.backbone.compile()

    def once():
        return generate(den, sampler, num_samples=batch_size, seq_len=seq_len, seed=0,
                        batch_size=batch_size, device=dev)

    return den, once


def _row(den, once, *, timing: dict, spec: str, k: int, dev, batch_size: int, seq_len: int,
         compile: bool, bf16: bool, peaks: dict[str, list[float]]) -> dict:
    """One row: ``spec`` at K = ``k`` with its FLOP/s against the fastest GEMM of each round
    (``fraction_of_peak``, median over rounds) and against PyTorch's own (``fraction_of_aten_peak``, the
    reference of rows written before both were timed). ``peak_gflops`` is the median of the rounds'
    fastest GEMM, ``peak_kernel`` the GEMM with the highest median rate."""
    counter = ReadoutCounter(den)
    nfe = once().nfe
    backbone = backbone_forward_flops(den.backbone, batch=batch_size, seq_len=seq_len)
    flops = nfe * backbone + readout_forward_flops(den.autoencoder, tokens=counter.positions)
    times = timing["times_s"]
    best = [max(rates) for rates in zip(*peaks.values())]  # each round's fastest GEMM
    peak_kernel = max(peaks, key=lambda name: statistics.median(peaks[name]))
    achieved = flops / timing["median_s"]
    backend = cpu_linear_backend() if dev.type == "cpu" else None
    return {"sampler": spec, "K": k, "device": str(dev), "bf16": bf16, "compile": compile,
            "cpu_linear": backend, "cpu_gelu": cpu_gelu_placement() if backend == "onednn" else None,
            "nfe": nfe,
            "batch": batch_size, "seq_len": seq_len, **{k: v for k, v in timing.items() if k != "times_s"},
            "tokens_per_s": batch_size * seq_len / timing["median_s"],
            "s_per_call": timing["median_s"] / max(nfe, 1), "gflop": flops / 1e9,
            "achieved_gflops": achieved / 1e9, "peak_gflops": statistics.median(best) / 1e9,
            "peak_kernel": peak_kernel,
            "fraction_of_peak": statistics.median(flops / t / p for t, p in zip(times, best, strict=True)),
            "fraction_of_aten_peak": statistics.median(flops / t / p for t, p in zip(times, peaks["aten"],
                                                                                       strict=True)),
            "times_s": times, "peak_rounds_gflops": [p / 1e9 for p in best]}  # raw rounds, in round order
