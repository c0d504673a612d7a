#!/usr/bin/env bash
# The single-thread probes behind three statements of docs/benchmarks.md ("Sampling at the machine's
# limit"): where adaptive's time goes at K = 16 (torch.profiler, ode beside it), the cost of ATen's
# tanh-approximate GELU against the exact one, and a DiT forward eager against torch.compile.
#   CKPT=outputs/reproduce/fast/distill/checkpoints/distilled.ckpt bash docs/bench/cpu_profiles.sh
set -euo pipefail
CKPT=${CKPT:-outputs/reproduce/fast/distill/checkpoints/distilled.ckpt} python - <<'PY'
import os, time
import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from textflow.backbones import DiT
from textflow.checkpoint import load_run
from textflow.samplers import Sampler
from textflow.sampling.generate import generate

torch.set_num_threads(1)


def best_ms(fn, n=20):
    best = float("inf")
    with torch.no_grad():
        for _ in range(n):
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
    return best * 1e3


loaded = load_run(os.environ["CKPT"])
length = int(loaded.info["seq_len"])
for name in ("ode", "adaptive"):
    sampler = Sampler(name=name, steps=16)
    den = sampler.denoiser(loaded, use_ema=True)
    run = lambda: generate(den, sampler, num_samples=32, seq_len=length, seed=0, batch_size=32)
    run()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run()
    print(f"== {name} K=16, batch 32 x {length}")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))

h = torch.randn(2048, 1024)
print(f"GELU on 2048 x 1024: tanh {best_ms(lambda: F.gelu(h, approximate='tanh')):.2f} ms, "
      f"erf {best_ms(lambda: F.gelu(h)):.2f} ms")

torch.manual_seed(0)
net = DiT(latent_dim=64, max_len=64, width=256, depth=4, heads=4).eval()
for p in net.parameters():
    torch.nn.init.normal_(p, std=0.02)
z, t = torch.randn(32, 64, 64), torch.rand(32)
eager = best_ms(lambda: net(z, t), 10)
compiled = torch.compile(net)
start = time.perf_counter()
with torch.no_grad():
    compiled(z, t)
print(f"DiT forward (dit_small shape): eager {eager:.1f} ms, compile {time.perf_counter() - start:.0f} s, "
      f"compiled {best_ms(lambda: compiled(z, t), 10):.1f} ms")
PY
