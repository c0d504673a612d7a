"""The readout cross-entropy's matmuls on PyTorch's CPU GEMM (MKL) against oneDNN (docs/benchmarks.md, "Large
vocabularies", oneDNN's GEMMs): one whole-row chunk of a training step at a 131,072-token vocabulary (256
positions x 64 features, the `dit_tiny` and `dit_small` latents), each matmul both ways, checked to agree,
then the whole kernel, forward and backward, over 1,024 positions on either backend. Median of 7 rounds
after a warm-up, 2 threads.

    python docs/bench/readout_gemm_probe.py [VOCAB] [FEATURES]
"""

import sys

import torch

import textflow.kernels.readout_gemm as gemm
from textflow.allocator import keep_freed_memory
from textflow.bench.runner import time_round_robin
from textflow.kernels import linear_cross_entropy
from textflow.kernels.linear import use_cpu_linear

keep_freed_memory()
torch.set_num_threads(2)
V = int(sys.argv[1]) if len(sys.argv) > 1 else 131072
D = int(sys.argv[2]) if len(sys.argv) > 2 else 64
ROWS, POSITIONS = 256, 1024
g = torch.Generator().manual_seed(0)
f, w, b = torch.randn(ROWS, D, generator=g), torch.randn(V, D, generator=g) / 8, torch.randn(V, generator=g)
probs = torch.rand(ROWS, V, generator=g)
left = torch.randn(D + 1, ROWS, generator=g)

pairs = {
    "logits f W^T + b": (lambda: torch.addmm(b, f, w.T), lambda: gemm.logits(f, w, b, "onednn")),
    "features' grad P W": (lambda: probs @ w, lambda: gemm.rows_times_table(probs, w, "onednn")),
    "table's grad P^T f + bias col sums, (V, D)": (lambda: (probs.T @ f, probs.sum(0)), None),
    "table's grad [f, 1]^T P": (lambda: left @ probs, lambda: gemm._onednn(left, probs.T)),
}
for name, (aten, onednn) in pairs.items():
    fns = {"aten": aten} if onednn is None else {"aten": aten, "onednn": onednn}
    if onednn is not None:
        torch.testing.assert_close(onednn(), aten(), rtol=1e-4, atol=1e-3)
    timed = time_round_robin(fns, warmup=1, repeats=7)
    print(f"{name:44s} " + "  ".join(f"{k} {1e3 * v['median_s']:6.1f} ms" for k, v in timed.items()))

features = torch.randn(POSITIONS, D, generator=g, requires_grad=True)
table = (torch.randn(V, D, generator=g) / 8).requires_grad_(True)
bias = torch.zeros(V, requires_grad=True)
targets = torch.randint(0, V, (POSITIONS,), generator=g)


def step(backend):  # mkl: the kernel's matmuls on PyTorch's own GEMM (readout_gemm.gemm_backend)
    def run():
        with use_cpu_linear(backend):
            linear_cross_entropy(features, table, bias, targets)[0].backward()
        features.grad = table.grad = bias.grad = None
    return run


timed = time_round_robin({"mkl": step("mkl"), "onednn": step("onednn")}, warmup=1, repeats=7)
print(f"{'cross-entropy forward + backward, ' + str(POSITIONS) + ' positions':44s} "
      + "  ".join(f"{k} {1e3 * v['median_s']:6.1f} ms" for k, v in timed.items()))
