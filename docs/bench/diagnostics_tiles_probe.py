"""Where one training-time diagnostics evaluation spends its time at a large vocabulary, and whether the
readout tiles' shape moves it (docs/benchmarks.md, "Large vocabularies"): `dit_tiny` with the embedding
autoencoder as `bench vocab` builds it, 16 sequences of 64 tokens, the readout kind's `monitor` (what the
training callback runs). First a `torch.profiler` of one evaluation after a warm-up (the top operators by
self time, by input shape), then the evaluation timed under several tile shapes (the logits a tile holds,
`chunk_budget`, and its vocabulary columns at most, `online.VOCAB_TILE`) in rounds, median of 3, 2 threads.

    python docs/bench/diagnostics_tiles_probe.py [VOCAB]
"""

import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

import textflow.kernels.online as online
from textflow.allocator import keep_freed_memory
from textflow.bench.runner import time_round_robin
from textflow.bench.vocab import build
from textflow.kernels import chunk_budget

keep_freed_memory()
torch.set_num_threads(2)
VOCAB = int(sys.argv[1]) if len(sys.argv) > 1 else 131072
module = build(conf_dir=str(Path("conf").resolve()), preset="dit_tiny", vocab=VOCAB, seq_len=64, batch=16)
den = module.denoiser(use_ema=True)
monitor = den.autoencoder.readout_kind.monitor
ids = torch.randint(0, VOCAB, (16, 64), generator=torch.Generator().manual_seed(0))

with torch.no_grad():
    monitor(den, ids)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        monitor(den, ids)
events = prof.key_averages(group_by_input_shape=True)
total = sum(e.self_cpu_time_total for e in events)
print(f"one evaluation at V = {VOCAB}: {total / 1e6:.2f} s of operator self time")
for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:15]:
    share, ms = 100 * e.self_cpu_time_total / total, e.self_cpu_time_total / 1e3
    print(f"{share:5.1f} %  {ms:8.1f} ms  {e.count:5d} calls  {e.key}  {str(e.input_shapes)[:80]}")


def evaluation(logits: int, columns: int):
    def run():
        online.VOCAB_TILE = columns
        with torch.no_grad(), chunk_budget(logits):
            monitor(den, ids)
    return run


shapes = ((1 << 20, 4096), (1 << 20, 1024), (1 << 20, 2048),
          (1 << 21, 4096), (1 << 21, 8192), (1 << 22, 4096))
timed = time_round_robin({f"{n >> 20} M logits, {c} columns": evaluation(n, c) for n, c in shapes},
                         warmup=1, repeats=3)
for name, summary in timed.items():
    print(f"{name:28s} {summary['median_s']:6.2f} s")
