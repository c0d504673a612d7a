"""Time the same ``ode`` K = 4 batch (32 x 64 tokens, 2 threads) twelve times in this process and print the
median of the last ten: the fresh-process A/B steps of docs/bench/cpu_linear.sh and
docs/bench/sampling_passes.sh (docs/benchmarks.md, "Sampling at the machine's limit").

    python docs/bench/ode_batch_times.py CKPT LABEL
"""

import os
import statistics
import sys
import time

import torch

import textflow
from textflow.allocator import keep_freed_memory
from textflow.checkpoint import load_run
from textflow.samplers import Sampler
from textflow.sampling.generate import generate

ckpt, label = sys.argv[1:3]
keep_freed_memory()
torch.set_num_threads(2)
sampler = Sampler(name="ode", steps=4)
den = sampler.denoiser(load_run(ckpt), use_ema=True)
times = []
for _ in range(12):
    start = time.perf_counter()
    generate(den, sampler, num_samples=32, seq_len=64, seed=0, batch_size=32)
    times.append(time.perf_counter() - start)
print(f"{label} (textflow from {os.path.dirname(textflow.__file__)}): ode K=4 median "
      f"{statistics.median(times[2:]):.3f} s, min {min(times):.3f} s")
