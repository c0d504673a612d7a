"""The readout cross-entropy's two schedules (``textflow.kernels.cross_entropy``: whole-row chunks against
two passes over cache-sized tiles) on the same problem, in one process, in rounds, 2 threads
(docs/benchmarks.md, "Large vocabularies"): 1,024 positions, D = 64, loss and all three gradients, at
each vocabulary given. Prints the median seconds of each schedule (tiles at the shape the kernel picks,
``ce_tile_shape``, and at 256 x 4,096) and how far their losses and table gradients are apart.

    python docs/bench/ce_schedules_paired.py [V,V,...]      # default 4096,50257,131072
"""

import sys

import torch

from textflow.allocator import keep_freed_memory
from textflow.bench.runner import cpu_model, time_round_robin
from textflow.kernels import chunk_elements
from textflow.kernels import cross_entropy as ce

keep_freed_memory()
torch.set_num_threads(2)
n, dim = 1024, 64
print(f"{cpu_model()} ({torch.backends.cpu.get_cpu_capability()}), torch {torch.__version__}")
for vocab in [int(v) for v in (sys.argv[1] if len(sys.argv) > 1 else "4096,50257,131072").split(",")]:
    g = torch.Generator().manual_seed(0)
    f, w = torch.randn(n, dim, generator=g), torch.randn(vocab, dim, generator=g) * 0.1
    b, y = torch.randn(vocab, generator=g) * 0.1, torch.randint(0, vocab, (n,), generator=g)

    def schedule(tile=None):
        def call():
            grads = (torch.empty_like(f), torch.zeros_like(w), torch.zeros_like(b))
            totals = [torch.zeros((), dtype=torch.float64), torch.zeros((), dtype=torch.int64)]
            if tile is None:  # whole rows allocate and return their gradients
                rows = max(1, chunk_elements() // vocab)
                grads = ce._whole_rows(f, w, b, y, rows, (True, True, True), totals)
            else:
                ce._two_pass_tiles(f, w, b, y, tile, grads, totals)
            return grads, totals
        return call

    picked = ce.ce_tile_shape(n, vocab)
    calls = {"whole rows": schedule(), f"tiles {picked[0]}x{picked[1]}": schedule(picked),
             "tiles 256x4096": schedule((256, 4096))}
    outs = {name: fn() for name, fn in calls.items()}
    ref = outs["whole rows"]
    for name, (grads, totals) in outs.items():
        print(f"V={vocab} {name}: loss sum {float(totals[0]):.6f} (vs whole rows "
              f"{float(totals[0] - ref[1][0]):+.1e}), table gradient max diff "
              f"{float((grads[1] - ref[0][1]).abs().max()):.1e}")
    timed = time_round_robin(calls, warmup=1, repeats=3, desc=f"V = {vocab}")
    print(f"V={vocab}, {6 * vocab * dim * n / 1e9:.1f} GFLOP of readout, median s: "
          + ", ".join(f"{k} {t['median_s']:.3f}" for k, t in timed.items()), flush=True)
