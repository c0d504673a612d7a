"""The DiT's sampling GEMMs (``dit_small`` at batch 32 x 64: 2,048 rows; 256 -> 768, 256, 1,024 and
1,024 -> 256, with bias) and the 2048³ square on PyTorch's GEMM (MKL) and on oneDNN's, plain and with the
weight packed as sampling packs it: GFLOP/s, the median of 10 calls, three rounds, 2 threads, on the CPU
this runs on (docs/benchmarks.md, "Sampling at the machine's limit", tenth block).

    python docs/bench/gemm_shapes_probe.py
"""

import statistics

import torch
import torch.nn.functional as F

from textflow.allocator import keep_freed_memory
from textflow.bench.runner import cpu_model, seconds
from textflow.kernels import linear as kl

keep_freed_memory()
torch.set_num_threads(2)
print(f"{cpu_model()} ({torch.backends.cpu.get_cpu_capability()}), torch {torch.__version__}")
gen = torch.Generator().manual_seed(0)
SHAPES = [(2048, 256, 768), (2048, 256, 256), (2048, 256, 1024), (2048, 1024, 256)]
a, b = torch.randn(2048, 2048, generator=gen), torch.randn(2048, 2048, generator=gen)


def gflops(fn, flops: float, calls: int = 10) -> float:
    fn()
    return flops / statistics.median(seconds(fn) for _ in range(calls)) / 1e9


rates: dict[str, list[float]] = {}
for _ in range(3):
    rates.setdefault("2048^3 square, MKL", []).append(gflops(lambda: torch.mm(a, b), 2 * 2048**3, 5))
    square_onednn = gflops(lambda: kl.onednn_linear(a, b), 2 * 2048**3, 5)
    rates.setdefault("2048^3 square, oneDNN", []).append(square_onednn)
    for rows, fan_in, fan_out in SHAPES:
        x = torch.randn(rows, fan_in, generator=gen)
        w, bias = torch.randn(fan_out, fan_in, generator=gen), torch.randn(fan_out, generator=gen)
        packed, flops = kl._reorder(w, rows), 2 * rows * fan_in * fan_out
        name = f"{rows} x {fan_in} -> {fan_out}"
        rates.setdefault(f"{name}, MKL", []).append(gflops(lambda: F.linear(x, w, bias), flops))
        rates.setdefault(f"{name}, oneDNN", []).append(
            gflops(lambda: kl._fused_op()(x, w, bias, "none", [], ""), flops))
        rates.setdefault(f"{name}, oneDNN packed", []).append(
            gflops(lambda: kl._fused_op()(x, packed, bias, "none", [], ""), flops))
for name, values in rates.items():
    print(f"{name:32s} GFLOP/s per round: " + " ".join(f"{v:6.1f}" for v in values))
