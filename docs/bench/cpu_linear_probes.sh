#!/usr/bin/env bash
# The probes behind the third block of docs/benchmarks.md ("Sampling at the machine's limit"), 2 threads:
# where an eager ode K = 4 batch spends its time with the oneDNN linears (torch.profiler), attention as
# SDPA against two matmuls around a softmax at the DiT's shape, and the backbone compiled with and
# without inductor's freezing.
#   CKPT=outputs/reproduce/fast/distill/checkpoints/distilled.ckpt bash docs/bench/cpu_linear_probes.sh
set -euo pipefail
export CKPT=${CKPT:-outputs/reproduce/fast/distill/checkpoints/distilled.ckpt}
python - <<'PY'
import os, statistics, time
import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from textflow.allocator import keep_freed_memory
from textflow.checkpoint import load_run
from textflow.samplers import Sampler
from textflow.sampling.generate import generate

keep_freed_memory()
torch.set_num_threads(2)
loaded = load_run(os.environ["CKPT"])
sampler = Sampler(name="ode", steps=4)
den = sampler.denoiser(loaded, use_ema=True)
once = lambda: generate(den, sampler, num_samples=32, seq_len=64, seed=0, batch_size=32)
once(), once()
with profile(activities=[ProfilerActivity.CPU]) as prof:
    once()
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


def best_ms(fn, n=50):
    with torch.no_grad():
        for _ in range(5):
            fn()
        times = []
        for _ in range(n):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return min(times) * 1e3


q, k, v = torch.randn(32, 64, 768).unflatten(-1, (3, 4, -1)).permute(2, 0, 3, 1, 4).unbind(0)
sdpa = lambda: F.scaled_dot_product_attention(q, k, v)
two_matmuls = lambda: torch.softmax(q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5, -1) @ v
print(f"attention (32, 4, 64, 64): SDPA {best_ms(sdpa):.2f} ms, two matmuls {best_ms(two_matmuls):.2f} ms, "
      f"max difference {(sdpa() - two_matmuls()).abs().max():.1e}")
PY
for freezing in 0 1; do
  FREEZING=$freezing python - <<'PY'
import os, statistics, time
import torch
import torch._inductor.config as inductor_config

from textflow.allocator import keep_freed_memory
from textflow.checkpoint import load_run
from textflow.samplers import Sampler
from textflow.sampling.generate import generate

keep_freed_memory()
torch.set_num_threads(2)
inductor_config.freezing = os.environ["FREEZING"] == "1"
sampler = Sampler(name="ode", steps=4)
den = sampler.denoiser(load_run(os.environ["CKPT"]), use_ema=True)
den.backbone.compile()
once = lambda: generate(den, sampler, num_samples=32, seq_len=64, seed=0, batch_size=32)
once()
times = []
for _ in range(10):
    start = time.perf_counter()
    once()
    times.append(time.perf_counter() - start)
print(f"compiled, freezing={inductor_config.freezing}: ode K=4 median {statistics.median(times):.3f} s")
PY
done
