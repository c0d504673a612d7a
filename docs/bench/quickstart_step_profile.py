"""Where the one-hot quickstart's training step spends its time (docs/benchmarks.md, "Training
throughput", the one-hot quickstart's step): the step as `bench vocab` builds it (the real configs,
`experiment=quickstart`, `dit_small`, batch 64 x 64, V = 4,096, Muon and AdamW), its median over 3 steps
after 2 warm-ups, the optimizer and the EMA alone, a `torch.profiler` table of 3 steps, and Muon's
Newton-Schulz iteration per hidden-matrix shape (4 of each in `dit_small`), one at a time and the 4
batched with `bmm`, 2 threads.

    python docs/bench/quickstart_step_profile.py
"""

from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from textflow.allocator import keep_freed_memory
from textflow.bench.diagnostics import training_step_parts
from textflow.bench.runner import time_call
from textflow.bench.vocab import build
from textflow.training.muon import orthogonalize

keep_freed_memory()
torch.set_num_threads(2)
VOCAB, BATCH, SEQ = 4096, 64, 64


def median_s(fn, repeats: int = 3, warmup: int = 2) -> float:
    return time_call(fn, warmup=warmup, repeats=repeats, desc="timing")["median_s"]


torch.manual_seed(0)
module = build(conf_dir=str(Path(__file__).resolve().parents[2] / "conf"), preset="dit_small", vocab=VOCAB,
               seq_len=SEQ, batch=BATCH, overrides=["experiment=quickstart"])
parts = training_step_parts(module, torch.randint(0, VOCAB, (BATCH, SEQ)))
print(f"step {median_s(parts['step']):.3f} s; alone: optimizer {1e3 * median_s(parts['optimizer']):.0f} ms, "
      f"EMA {1e3 * median_s(parts['ema']):.1f} ms")
with profile(activities=[ProfilerActivity.CPU]) as prof:
    for _ in range(3):
        parts["step"]()
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=16, max_name_column_width=40))

group = module.make_optimizer().param_groups[0]  # Muon's group: the hidden matrices
assert group["kind"] == "muon"
knobs = dict(coefficients=group["ns_coefficients"], steps=group["ns_steps"], eps=group["eps"],
             dtype=torch.float32)
shapes = sorted({tuple(p.shape) for p in group["params"]})
total = 0.0
for shape in shapes:
    count = sum(tuple(p.shape) == shape for p in group["params"])
    one = torch.randn(*shape)
    single = median_s(lambda: orthogonalize(one, **knobs), repeats=10, warmup=1)
    m, n = min(shape), max(shape)
    flops = knobs["steps"] * 2 * (2 * m * m * n + m ** 3)
    stack = torch.randn(count, *shape)
    a, b, c = knobs["coefficients"]

    def batched():
        x = stack.transpose(1, 2) if shape[0] > shape[1] else stack
        x = x / x.norm(dim=(1, 2), keepdim=True)
        for _ in range(knobs["steps"]):
            gram = torch.bmm(x, x.transpose(1, 2))
            x = torch.baddbmm(x, torch.baddbmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)

    together = median_s(batched, repeats=10, warmup=1)
    total += count * single
    print(f"Newton-Schulz {shape} x{count}: {1e3 * single:.2f} ms each ({flops / single / 1e9:.0f} GFLOP/s), "
          f"{count} batched {1e3 * together:.2f} ms against {1e3 * count * single:.2f} ms one by one")
print(f"Newton-Schulz over every hidden matrix: {1e3 * total:.0f} ms a step")
