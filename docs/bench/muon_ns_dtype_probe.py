"""One ``MuonWithAdamW`` step over dit_small (random gradients, 2 threads) with torch's Newton-Schulz
iteration as it ships (bfloat16) and with the same iteration in float32, and a (1024 x 256) Gram matrix
and product in both dtypes: on a CPU without native bfloat16 (the AVX2 host of docs/benchmarks.md) the
bfloat16 matmuls are emulated and the Muon step dominates training. Not fixed yet (issue #17's note).

    python docs/bench/muon_ns_dtype_probe.py
"""

import inspect
import time
from pathlib import Path

import torch
import torch.optim._muon as muon

from textflow.bench.runner import cpu_model
from textflow.bench.vocab import build

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
module = build(conf_dir=conf, preset="dit_small", vocab=4096, seq_len=64, batch=64,
               overrides=["optimizer@module.optimizer=muon"])
optimizer = module.configure_optimizers()["optimizer"]
for p in module.net.parameters():
    p.grad = torch.randn_like(p)
source = inspect.getsource(muon._zeropower_via_newtonschulz)
scope = {"torch": torch, "Tensor": torch.Tensor}
exec(source.replace("grad.bfloat16()", "grad.float()"), scope)  # the same iteration in float32
for label, iteration in (("bfloat16 (as shipped)", muon._zeropower_via_newtonschulz),
                         ("float32", scope["_zeropower_via_newtonschulz"])):
    muon._zeropower_via_newtonschulz = iteration
    optimizer.step()
    start = time.perf_counter()
    optimizer.step()
    print(f"MuonWithAdamW step over dit_small, Newton-Schulz in {label}: {time.perf_counter() - start:.3f} s")
