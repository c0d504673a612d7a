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
from paired_sampling import print_paired_batches
from textflow.bench.runner import cpu_model
from textflow.bench.train import matmul_peaks
from textflow.kernels.linear import use_cpu_linear

keep_freed_memory()
torch.set_num_threads(2)
print(f"{cpu_model()} ({torch.backends.cpu.get_cpu_capability()}), torch {torch.__version__}")
print("square-matmul peak, GFLOP/s:", {k: round(v / 1e9, 1) for k, v in matmul_peaks().items()})
for ckpt in sys.argv[1:]:
    print_paired_batches(ckpt, ("onednn", "aten"), use_cpu_linear)
