#!/usr/bin/env bash
# The probes behind the profile statements of docs/benchmarks.md ("Sampling at the machine's limit").
# Single-thread: where adaptive's time goes at K = 16 (torch.profiler, ode beside it), the cost of ATen's
# tanh-approximate GELU against the exact one, and a DiT forward eager against torch.compile. Then two
# threads, as bench sampling runs: the per-shape profile of one ode K = 4 batch, one block's MLP split
# over blocks of tokens, and the tanh-GELU written as x * sigmoid(2z).
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
CKPT=${CKPT:-outputs/reproduce/fast/distill/checkpoints/distilled.ckpt} python - <<'PY'
import math, os, time
import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from textflow.allocator import keep_freed_memory
from textflow.checkpoint import load_run
from textflow.samplers import Sampler
from textflow.sampling.generate import generate

keep_freed_memory()  # as bench sampling does
torch.set_num_threads(2)


def median_ms(fn, n=40):
    times = []
    with torch.no_grad():
        for _ in range(5):
            fn()
        for _ in range(n):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return sorted(times)[n // 2] * 1e3


loaded = load_run(os.environ["CKPT"])
sampler = Sampler(name="ode", steps=4)
den = sampler.denoiser(loaded, use_ema=True)
run = lambda: generate(den, sampler, num_samples=32, seq_len=int(loaded.info["seq_len"]), seed=0, batch_size=32)
with torch.no_grad():
    run()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        run()
print("== ode K=4, 2 threads, by op and shape")
print(prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=14,
                                                          max_name_column_width=30, max_shapes_column_width=70))

torch.manual_seed(0)
mlp = torch.nn.Sequential(torch.nn.Linear(256, 1024), torch.nn.GELU(approximate="tanh"), torch.nn.Linear(1024, 256))
x = torch.randn(2048, 256)
with torch.no_grad():
    whole = mlp(x)
    for rows in (256, 512, 1024):
        split = torch.cat([mlp(x[i:i + rows]) for i in range(0, len(x), rows)])
        print(f"MLP over {rows}-token blocks: {median_ms(lambda: torch.cat([mlp(x[i:i + rows]) for i in range(0, len(x), rows)])):.1f} ms "
              f"(whole: {median_ms(lambda: mlp(x)):.1f} ms), identical: {torch.equal(split, whole)}")

h = torch.randn(2048, 1024) * 2
c = 2 * math.sqrt(2 / math.pi)


def sigmoid_gelu():
    y = h * h
    y.mul_(0.044715 * c).add_(c).mul_(h).sigmoid_()
    return y.mul_(h)


print(f"tanh-GELU on 2048 x 1024, 2 threads: ATen {median_ms(lambda: F.gelu(h, approximate='tanh')):.2f} ms, "
      f"x * sigmoid(2z) {median_ms(sigmoid_gelu):.2f} ms, largest difference "
      f"{(sigmoid_gelu() - F.gelu(h, approximate='tanh')).abs().max().item():.1e}")
PY
