"""Where one training step spends its time at each vocabulary size (``torch.profiler``, 2 threads, batch
16 x 64, the embedding autoencoder, the real configs as ``bench vocab`` builds them; docs/benchmarks.md,
"Large vocabularies"): three steps after two warm-up steps per vocabulary, the top operators by self time,
among them ``Optimizer.step#AdamW.step`` (the optimizer over every parameter, the table included), then
the operators whose self time per step grew the most from the first vocabulary to the last; and, timed
alone (median of 15 after 3 warm-ups), the table-sized work a step does beyond the readout's own: the
encoder's lookup (``encode``: the gathered rows normalised) with its dense gradient into the table, and
one table-sized sum of two gradients.

    python docs/bench/vocab_step_profile.py [--preset dit_tiny] [--vocabs 131072] [--conf CONF_DIR]
"""

import argparse
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from textflow.allocator import keep_freed_memory
from textflow.bench.diagnostics import training_step
from textflow.bench.runner import time_call
from textflow.bench.vocab import build

STEPS = 3


def median_ms(fn) -> float:
    return 1e3 * time_call(fn, warmup=3, repeats=15, desc="table-sized work")["median_s"]


def table_work_ms(module, ids: torch.Tensor) -> dict[str, float]:
    """The encoder's lookup forward and backward (its gradient lands in a fresh table-sized tensor) and the
    sum of two table-sized gradients, each timed alone."""
    autoencoder = module.net["autoencoder"]
    table = autoencoder.embedding.weight
    other = torch.randn_like(table)

    def lookup():
        table.grad = None
        autoencoder.encode(ids).sum().backward()

    return {"encoder lookup, forward + backward": median_ms(lookup),
            "sum of two table-sized gradients": median_ms(lambda: table.detach() + other)}

parser = argparse.ArgumentParser()
parser.add_argument("--preset", default="dit_tiny")
parser.add_argument("--vocabs", default="131072", help="comma-separated vocabulary sizes")
parser.add_argument("--conf", default=str(Path("conf").resolve()))
args = parser.parse_args()
keep_freed_memory()
torch.set_num_threads(2)
per_step_ms = {}
for vocab in (int(v) for v in args.vocabs.split(",")):
    module = build(conf_dir=args.conf, preset=args.preset, vocab=vocab, seq_len=64, batch=16)
    batch = torch.randint(0, vocab, (16, 64), generator=torch.Generator().manual_seed(0))
    step = training_step(module, batch)
    step(), step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(STEPS):
            step()
    print(f"{args.preset}, V = {vocab}")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25, max_name_column_width=50))
    print("per step, in ms:", {e.key: round(e.cpu_time_total / STEPS / 1e3, 1) for e in prof.key_averages()
                              if e.key in ("Optimizer.step#AdamW.step", "_LinearCrossEntropy")})
    per_step_ms[vocab] = {e.key: e.self_cpu_time_total / STEPS / 1e3 for e in prof.key_averages()}
    ids = torch.randint(0, vocab, (16, 64), generator=torch.Generator().manual_seed(1))
    print("timed alone, in ms:", {k: round(v, 2) for k, v in table_work_ms(module, ids).items()})
if len(per_step_ms) > 1:
    first, last = per_step_ms[min(per_step_ms)], per_step_ms[max(per_step_ms)]
    keys = first.keys() | last.keys()
    growth = sorted(((last.get(k, 0.0) - first.get(k, 0.0), k) for k in keys), reverse=True)
    print(f"self ms per step, V = {min(per_step_ms)} -> {max(per_step_ms)}, the largest growths:")
    for delta, key in growth[:15]:
        print(f"  {key:50s} {first.get(key, 0.0):8.1f} -> {last.get(key, 0.0):8.1f}  ({delta:+.1f})")
