"""Where one training step of dit_tiny at a 131,072-token vocabulary spends its time (``torch.profiler``,
2 threads, batch 16 x 64, the embedding autoencoder, the real configs as ``bench vocab`` builds them;
docs/benchmarks.md, "Large vocabularies"): three steps after two warm-up steps, the top operators by self
time, among them ``Optimizer.step#AdamW.step`` (the optimizer over every parameter, the table included).

    python docs/bench/vocab_step_profile.py [CONF_DIR]
"""

import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from textflow.allocator import keep_freed_memory
from textflow.bench.diagnostics import training_step
from textflow.bench.vocab import build

keep_freed_memory()
torch.set_num_threads(2)
conf = sys.argv[1] if len(sys.argv) > 1 else str(Path("conf").resolve())
module = build(conf_dir=conf, preset="dit_tiny", vocab=131072, seq_len=64, batch=16)
step = training_step(module, torch.randint(0, 131072, (16, 64), generator=torch.Generator().manual_seed(0)))
step(), step()
with profile(activities=[ProfilerActivity.CPU]) as prof:
    for _ in range(3):
        step()
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25, max_name_column_width=50))
print("per step, in ms:", {e.key: round(e.cpu_time_total / 3e3, 1) for e in prof.key_averages()
                          if e.key in ("Optimizer.step#AdamW.step", "_LinearCrossEntropy")})
