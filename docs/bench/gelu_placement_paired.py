"""Where the oneDNN path applies the MLP's tanh-GELU (``textflow.kernels.linear``, ``fused`` as oneDNN's
post-op or ``separate`` as ATen's GELU after the plain GEMM), in one process, 2 threads, on the CPU this
runs on (docs/benchmarks.md, "On the AVX2 host, with the target's model"):

1. one (2048 x 256) @ (256 x 1024) linear, the DiT MLP's first matmul at batch 32 x 64, packed weights:
   best and median ms of 30 calls for each placement, and the largest difference between the two;
2. for each CKPT, ``ode`` and ``commit`` at K = 4 (batch 32), both placements in rounds
   (``textflow.bench.runner.time_round_robin``) inside one packing block: the median seconds per batch.

    python docs/bench/gelu_placement_paired.py CKPT [CKPT ...]
"""

import statistics
import sys

import torch

from textflow.allocator import keep_freed_memory
from paired_sampling import print_paired_batches
from textflow.bench.runner import cpu_model, seconds
from textflow.kernels.linear import GELU_PLACEMENTS, cpu_gelu_placement, linear, reuse_packed_weights, use_cpu_gelu

keep_freed_memory()
torch.set_num_threads(2)
print(f"{cpu_model()} ({torch.backends.cpu.get_cpu_capability()}), torch {torch.__version__}, "
      f"default placement here: {cpu_gelu_placement()}")
gen = torch.Generator().manual_seed(0)
x = torch.randn(32, 64, 256, generator=gen)
weight = torch.nn.Parameter(torch.randn(1024, 256, generator=gen) / 16)
bias = torch.nn.Parameter(torch.randn(1024, generator=gen))
outputs = {}
with torch.no_grad(), reuse_packed_weights():
    for placement in GELU_PLACEMENTS:
        with use_cpu_gelu(placement):
            outputs[placement] = linear(x, weight, bias, gelu=True)
            times = sorted(seconds(lambda: linear(x, weight, bias, gelu=True)) for _ in range(30))
        print(f"linear (2048 x 256) -> 1024 + tanh-GELU, {placement}: best {times[0] * 1e3:.2f} ms, "
              f"median {statistics.median(times) * 1e3:.2f} ms")
print(f"largest difference between the placements: {(outputs['fused'] - outputs['separate']).abs().max():.2e}")
for ckpt in sys.argv[1:]:
    print_paired_batches(ckpt, GELU_PLACEMENTS, use_cpu_gelu)
