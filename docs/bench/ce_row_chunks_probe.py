"""The training cross-entropy's two schedules at one shape, called alone (docs/benchmarks.md, "Large
vocabularies", "Larger whole-row chunks"): the two-pass tiles, whole-row chunks of the old 4 M-logit budget
and of 64 to 1,024 rows, and the dense ``F.cross_entropy`` with its backward, timed in rounds
(median of 5 after a warm-up), 2 threads.

    python docs/bench/ce_row_chunks_probe.py POSITIONS FEATURES VOCAB     # e.g. 4096 256 50257
"""

import sys

import torch
import torch.nn.functional as F

from textflow.allocator import keep_freed_memory
from textflow.bench.runner import time_round_robin
from textflow.kernels import cross_entropy as ce

keep_freed_memory()
torch.set_num_threads(2)
n, d, v = (int(a) for a in sys.argv[1:4])
g = torch.Generator().manual_seed(0)
f, w = torch.randn(n, d, generator=g), torch.randn(v, d, generator=g) * 0.05
b, y = torch.zeros(v), torch.randint(0, v, (n,), generator=g)


def buffers():
    return ((torch.empty_like(f), torch.zeros_like(w), torch.zeros_like(b)),
            [torch.zeros((), dtype=torch.float64), torch.zeros((), dtype=torch.int64)])


def whole(rows):
    return lambda: ce._whole_rows(f, w, b, y, rows, (True, True, True), buffers()[1])  # returns its gradients


def two_pass():
    ce._two_pass_tiles(f, w, b, y, ce.ce_tile_shape(n, v), *buffers())


fd, wd, bd = (t.clone().requires_grad_() for t in (f, w, b))


def dense():
    fd.grad = wd.grad = bd.grad = None
    F.cross_entropy(F.linear(fd, wd, bd), y).backward()


old_rows = (1 << 22) // v  # the chunk of the 4 M-logit budget
calls = {"two-pass tiles": two_pass, f"whole rows, {old_rows} a chunk (4 M logits)": whole(old_rows),
         **{f"whole rows, {r} a chunk": whole(r) for r in (64, 128, 256, 512, 1024)},
         "dense F.cross_entropy": dense}
timed = time_round_robin(calls, warmup=1, repeats=5, desc=f"{n} x {d} against {v}")
print(f"{n} positions x {d} features, vocabulary {v}")
for name, row in timed.items():
    print(f"  {name:40s} {row['median_s'] * 1e3:8.1f} ms")
