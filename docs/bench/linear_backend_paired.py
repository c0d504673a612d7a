"""The CPU inference linears on oneDNN against PyTorch's own GEMM (``textflow.kernels.linear``), in one
process, 2 threads, on the CPU this runs on (docs/benchmarks.md, "Sampling at the machine's limit",
seventh block):

1. the square-matmul peak of each (``textflow.bench.train.matmul_peaks``);
2. for each CKPT, ``ode`` and ``commit`` at K = 4 (batch 32), both backends in rounds
   (``textflow.bench.runner.time_round_robin``) inside one packing block: the median seconds per batch.

    python docs/bench/linear_backend_paired.py CKPT [CKPT ...]
"""

import sys

import torch

from textflow.allocator import keep_freed_memory
from textflow.bench.runner import cpu_model, time_round_robin
from textflow.bench.train import matmul_peaks
from textflow.checkpoint import load_run
from textflow.kernels.linear import reuse_packed_weights, use_cpu_linear
from textflow.samplers import Sampler
from textflow.sampling.generate import generate

keep_freed_memory()
torch.set_num_threads(2)
print(f"{cpu_model()} ({torch.backends.cpu.get_cpu_capability()}), torch {torch.__version__}")
print("square-matmul peak, GFLOP/s:", {k: round(v / 1e9, 1) for k, v in matmul_peaks().items()})
for ckpt in sys.argv[1:]:
    loaded = load_run(ckpt)
    den, seq_len = loaded.denoiser(), int(loaded.info["seq_len"])
    for name in ("ode", "commit"):
        sampler = Sampler(name=name, steps=4)

        def batch(backend: str, sampler=sampler):
            def call():
                with use_cpu_linear(backend):
                    generate(den, sampler, num_samples=32, seq_len=seq_len, seed=0, batch_size=32)
            return call

        with reuse_packed_weights():
            timed = time_round_robin({b: batch(b) for b in ("onednn", "aten")}, warmup=2, repeats=15,
                                     desc=f"{name} K=4")
        print(f"{ckpt}: {name} K=4 batch 32, median s: "
              + ", ".join(f"{b} {t['median_s']:.3f}" for b, t in timed.items()))
