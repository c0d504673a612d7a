"""Per-sample noise rows drawn in turn against spread over the intra-op threads (docs/benchmarks.md, "The
one-hot quickstart's model", noise drawn on both cores): 32 rows of 64 x 4,096 normals, one generator per
row, as `textflow.noise.randn` draws a one-hot batch's noise, each way checked equal to the rows drawn one
by one with `torch.randn`; median of 5 rounds after a warm-up, 2 threads.

    python docs/bench/noise_rows_probe.py
"""

import torch

from textflow import noise
from textflow.allocator import keep_freed_memory
from textflow.bench.runner import time_round_robin

keep_freed_memory()
torch.set_num_threads(2)
ROWS, SHAPE = 32, (64, 4096)


def generators():
    return noise.per_sample_generators(0, range(ROWS))


def stacked():  # what textflow.noise drew before: one row at a time, then a copy into the batch
    return torch.stack([torch.randn(SHAPE, generator=g) for g in generators()])


def in_turn():
    out = torch.empty((ROWS, *SHAPE))
    for row, g in zip(out, generators()):
        row.normal_(generator=g)
    return out


def threaded():
    return noise.randn((ROWS, *SHAPE), generator=generators())


reference = stacked()
assert all(torch.equal(draw(), reference) for draw in (in_turn, threaded))
timed = time_round_robin({"stacked": stacked, "in turn": in_turn, "threaded": threaded}, warmup=1, repeats=5)
for name, summary in timed.items():
    print(f"{name:10s} {1e3 * summary['median_s']:7.1f} ms")
