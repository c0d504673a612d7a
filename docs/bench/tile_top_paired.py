"""The two-level search for a logits tile's best tokens (``textflow.kernels.online.tile_top``) against the
direct ``max``/``topk`` it replaced, in one process, 2 threads (docs/benchmarks.md, "Sampling at the
machine's limit", sixth block):

1. one (256, V-tile) tile, both ways, alternated 300 times (median microseconds);
2. for each CKPT, ``ode``, ``commit`` and ``adaptive`` at K = 4 (batch 32), both ways alternated call by
   call, 15 pairs inside one packing block: the median paired difference per batch, and whether the two
   ways draw the same tokens from the same noise.

The direct way is forced by a block width that does not divide the tile (``TOP_BLOCK = V + 1``).

    python docs/bench/tile_top_paired.py CKPT [CKPT ...]
"""

import statistics
import sys
import time

import torch

from textflow.allocator import keep_freed_memory
from textflow.checkpoint import load_run
from textflow.kernels import online
from textflow.kernels.linear import reuse_packed_weights
from textflow.samplers import Sampler
from textflow.sampling.generate import generate

keep_freed_memory()
torch.set_num_threads(2)
TWO_LEVEL = online.TOP_BLOCK


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def paired(fn, repeats: int) -> tuple[list[float], list[float]]:
    """Per-call seconds of ``fn`` with the two-level search and with the direct one, alternated, each pair
    in a different order than the last."""
    two_level, direct = [], []
    for turn in range(repeats):
        for block in ((TWO_LEVEL, None) if turn % 2 else (None, TWO_LEVEL)):
            online.TOP_BLOCK = block or online.VOCAB_TILE + 1
            (two_level if block else direct).append(seconds(fn))
    online.TOP_BLOCK = TWO_LEVEL
    return two_level, direct


tile = torch.randn(256, online.VOCAB_TILE)
for k in (1, 2):
    fast, slow = paired(lambda: online.tile_top(tile, k), 300)
    print(f"tile (256, {online.VOCAB_TILE}), k = {k}: two-level {statistics.median(fast) * 1e6:.0f} us, "
          f"direct {statistics.median(slow) * 1e6:.0f} us")

for ckpt in sys.argv[1:]:
    loaded = load_run(ckpt)
    for name in ("ode", "commit", "adaptive"):
        sampler = Sampler(name=name, steps=4)
        den = sampler.denoiser(loaded, use_ema=True)
        draw = lambda: generate(den, sampler, num_samples=32, seq_len=64, seed=0, batch_size=32)  # noqa: E731
        with reuse_packed_weights():
            tokens = {}
            for block in (TWO_LEVEL, online.VOCAB_TILE + 1):
                online.TOP_BLOCK = block
                tokens[block] = draw().ids
            online.TOP_BLOCK = TWO_LEVEL
            fast, slow = paired(draw, 15)
        same = torch.equal(tokens[TWO_LEVEL], tokens[online.VOCAB_TILE + 1])
        diffs = [f - s for f, s in zip(fast, slow)]
        print(f"{ckpt} {name} K = 4: two-level minus direct {statistics.median(diffs) * 1e3:+.2f} ms per batch "
              f"({statistics.median(diffs) / statistics.median(slow) * 100:+.1f} % of "
              f"{statistics.median(slow) * 1e3:.0f} ms), tokens identical: {same}")
