"""Sampling throughput: tokens/s of each sampler at each K on a trained checkpoint (same noise,
same batch), with NFE read from the denoiser."""

from __future__ import annotations

from textflow.bench.runner import time_call
from textflow.checkpoint import load_run
from textflow.sampling.generate import generate
from textflow.samplers import Sampler


def run(*, ckpt: str, samplers: list[str], steps: list[int], batch_size: int = 32, repeats: int = 3) -> list[dict]:
    loaded = load_run(ckpt)
    seq_len = int(loaded.info["seq_len"])
    rows = []
    for name in samplers:
        for k in steps:
            sampler = Sampler(name=name, steps=k)
            den = sampler.denoiser(loaded, use_ema=True)

            def once():
                return generate(den, sampler, num_samples=batch_size, seq_len=seq_len, seed=0,
                                batch_size=batch_size)

            timing = time_call(once, warmup=1, repeats=repeats, desc=f"{name} K={k}")
            nfe = once().nfe
            rows.append({"sampler": name, "K": k, "nfe": nfe, "batch": batch_size, "seq_len": seq_len, **timing,
                         "tokens_per_s": batch_size * seq_len / timing["median_s"]})
    return rows

