"""Where one sampling batch spends its time, by operator (torch.profiler, 2 threads, 32 samples): the
profile behind docs/benchmarks.md's "The one-hot quickstart's model". The time grid is FLM's (fitted to the
checkpoint) for a one-hot model and the uniform grid otherwise.

    python docs/bench/sampling_profile.py CKPT [SAMPLER] [K]      # e.g. CKPT ode 4
"""

import sys

import torch
from torch.profiler import ProfilerActivity, profile

from textflow.checkpoint import load_run
from textflow.samplers import Sampler
from textflow.sampling.generate import generate
from textflow.time import ArgmaxAccuracyTime

torch.set_num_threads(2)
loaded = load_run(sys.argv[1])
name, steps = (sys.argv[2] if len(sys.argv) > 2 else "ode"), int(sys.argv[3]) if len(sys.argv) > 3 else 4
one_hot = getattr(loaded.module.net["autoencoder"], "one_hot", False)
sampler = Sampler(name=name, steps=steps, **({"time": ArgmaxAccuracyTime()} if one_hot else {}))
denoiser = sampler.denoiser(loaded, use_ema=True)


def run():
    generate(denoiser, sampler, num_samples=32, seq_len=int(loaded.info["seq_len"]), seed=0, batch_size=32)


with torch.no_grad():
    run()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run()
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20, max_name_column_width=36))
