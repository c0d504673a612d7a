"""One ``MuonWithAdamW`` step over dit_small (random gradients, 2 threads) with each ``muon_ns_dtype``
(conf/optimizer/muon.yaml; textflow.training.muon), and a (1024 x 256) Gram matrix and product in both
dtypes. On a CPU without native bfloat16 (the AVX2 host of docs/benchmarks.md) bfloat16 matmuls are
emulated, so torch's bfloat16 iteration dominates a training step there; ``auto`` picks float32 on such
a CPU and bfloat16 where oneDNN has bfloat16 kernels.

    python docs/bench/muon_ns_dtype_probe.py
"""

import time
from pathlib import Path

import torch

from textflow.bench.runner import cpu_model
from textflow.bench.vocab import build
from textflow.training.muon import ns_dtype_for

torch.set_num_threads(2)
print(f"{cpu_model()} ({torch.backends.cpu.get_cpu_capability()}), torch {torch.__version__}")
a = torch.randn(1024, 256)
for dtype in (torch.float32, torch.bfloat16):
    x = a.to(dtype)
    x @ x.T
    start = time.perf_counter()
    for _ in range(5):
        (x @ x.T) @ x
    print(f"Gram and product, {dtype}: {(time.perf_counter() - start) / 5 * 1e3:.1f} ms")

conf = str(Path("conf").resolve())
print(f"muon_ns_dtype=auto resolves to {ns_dtype_for('auto', torch.device('cpu'))} on this CPU")
for choice in ("bfloat16", "float32", "auto"):
    module = build(conf_dir=conf, preset="dit_small", vocab=4096, seq_len=64, batch=64,
                   overrides=["optimizer@module.optimizer=muon", f"module.optimizer.muon_ns_dtype={choice}"])
    optimizer = module.configure_optimizers()["optimizer"]
    for p in module.net.parameters():
        p.grad = torch.randn_like(p)
    optimizer.step()  # creates the state
    start = time.perf_counter()
    optimizer.step()
    print(f"MuonWithAdamW step over dit_small, muon_ns_dtype={choice}: {time.perf_counter() - start:.3f} s")
