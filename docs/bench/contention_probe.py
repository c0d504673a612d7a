"""Does the machine's matmul peak move when a sampling batch slows down? One process, 2 threads: the
2048³ oneDNN GEMM that ``bench sampling`` takes as the peak and one ``ode`` K = 4 batch (32 x 64 tokens)
of CKPT, alternated ROUNDS times inside one packing block; prints both series in GFLOP/s and their
spread (docs/benchmarks.md, "Sampling at the machine's limit", fifth block). The GEMM's three 16 MiB
matrices leave little of the batch's weights in cache, so the share it prints per round reads a few
points under ``bench sampling``'s, whose batches follow one another.

    python docs/bench/contention_probe.py CKPT [ROUNDS]
"""

import statistics
import sys
import time

import torch

from textflow.allocator import keep_freed_memory
from textflow.bench.train import backbone_forward_flops, readout_forward_flops
from textflow.checkpoint import load_run
from textflow.kernels.linear import onednn_linear, reuse_packed_weights
from textflow.samplers import Sampler
from textflow.sampling.generate import generate


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def spread(values: list[float]) -> str:
    return (f"median {statistics.median(values):.0f}, min {min(values):.0f}, max {max(values):.0f} GFLOP/s "
            f"(max / min {max(values) / min(values):.3f})")


ckpt, rounds = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20
keep_freed_memory()
torch.set_num_threads(2)
sampler = Sampler(name="ode", steps=4)
den = sampler.denoiser(load_run(ckpt), use_ema=True)
a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
gemm_flops = 2 * 2048**3
batch_flops = (4 * backbone_forward_flops(den.backbone, batch=32, seq_len=64)
               + readout_forward_flops(den.autoencoder, tokens=32 * 64))  # 4 calls and the final decode
batch = lambda: generate(den, sampler, num_samples=32, seq_len=64, seed=0, batch_size=32)
gemm, sampling = [], []
with torch.no_grad(), reuse_packed_weights():
    batch(), onednn_linear(a, b), onednn_linear(a, b)
    for _ in range(rounds):
        gemm.append(gemm_flops / seconds(lambda: onednn_linear(a, b)) / 1e9)
        sampling.append(batch_flops / seconds(batch) / 1e9)
shares = [s / g for s, g in zip(sampling, gemm)]
print("peak GEMM, GFLOP/s:", " ".join(f"{v:.0f}" for v in gemm))
print("ode batch, GFLOP/s:", " ".join(f"{v:.0f}" for v in sampling))
print(f"peak GEMM: {spread(gemm)}")
print(f"ode batch: {spread(sampling)}")
print(f"share of the same round's peak: median {statistics.median(shares):.3f}, "
      f"min {min(shares):.3f}, max {max(shares):.3f}")
