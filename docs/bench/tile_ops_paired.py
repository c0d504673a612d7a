"""The operations of ``textflow.kernels.tile_ops`` (a tile's best tokens by a two-level search, the
exponential through ``exp2``) against the direct ``max``/``topk`` and ``exp`` they replaced, in one
process, 2 threads (docs/benchmarks.md, "Sampling at the machine's limit", sixth block):

1. one (256, 4096) tile, each operation both ways, alternated 300 times (median microseconds);
2. the chunked training cross-entropy (``linear_cross_entropy``, forward and gradients) of 1,024 positions,
   D = 64, at V = 4,096 and 50,257, both ways alternated 20 times (median milliseconds);
3. for each CKPT, ``ode``, ``commit`` and ``adaptive`` at K = 4 (batch 32), both ways alternated call by
   call, 15 pairs inside one packing block: the median paired difference per batch, and whether the two
   ways draw the same tokens from the same noise.

The direct way: a block width wider than any tile (``tile_ops.TOP_BLOCK``) and ``exp`` in place of
``tile_ops.exp_`` where the kernels call it.

    python docs/bench/tile_ops_paired.py CKPT [CKPT ...]
"""

import contextlib
import statistics
import sys
import time

import torch

from textflow.allocator import keep_freed_memory
from textflow.checkpoint import load_run
from textflow.kernels import cross_entropy, linear_cross_entropy, online, tile_ops
from textflow.kernels.linear import reuse_packed_weights
from textflow.samplers import Sampler
from textflow.sampling.generate import generate

keep_freed_memory()
torch.set_num_threads(2)
BLOCK, FAST_EXP = tile_ops.TOP_BLOCK, tile_ops.exp_


@contextlib.contextmanager
def direct():
    """The kernels as they were: ``max``/``topk`` on the whole tile, ``exp``."""
    tile_ops.TOP_BLOCK = 1 << 30
    online.exp_ = cross_entropy.exp_ = torch.Tensor.exp_
    try:
        yield
    finally:
        tile_ops.TOP_BLOCK, online.exp_, cross_entropy.exp_ = BLOCK, FAST_EXP, FAST_EXP


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def paired(fn, repeats: int) -> tuple[list[float], list[float]]:
    """Per-call seconds of ``fn`` with the new operations and the direct ones, alternated, each pair in a
    different order than the last."""
    new, old = [], []
    for turn in range(repeats):
        for use_new in ((True, False) if turn % 2 else (False, True)):
            with (contextlib.nullcontext() if use_new else direct()):
                (new if use_new else old).append(seconds(fn))
    return new, old


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1e3


tile = torch.randn(256, 4096)
for k in (1, 2):
    new, old = paired(lambda: tile_ops.tile_top(tile, k), 300)
    print(f"tile (256, 4096), best {k}: two-level {median_ms(new) * 1e3:.0f} us, "
          f"direct {median_ms(old) * 1e3:.0f} us")
shifted = tile - tile.amax(-1, keepdim=True)
new, old = paired(lambda: online.exp_(shifted.clone()), 300)  # the name the streaming statistics call
print(f"tile (256, 4096), a copy and its exponential: through exp2 {median_ms(new) * 1e3:.0f} us, "
      f"exp {median_ms(old) * 1e3:.0f} us")

for vocab in (4096, 50257):
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(1024, 64, generator=gen, requires_grad=True)
    weight = (torch.randn(vocab, 64, generator=gen) / 8).requires_grad_()
    bias = torch.zeros(vocab, requires_grad=True)
    targets = torch.randint(vocab, (1024,), generator=gen)

    def step():
        loss, _ = linear_cross_entropy(features, weight, bias, targets)
        loss.backward()
        return loss

    new, old = paired(step, 20)
    with direct():
        loss_old = step().item()
    change = (median_ms(new) / median_ms(old) - 1) * 100
    print(f"training cross-entropy, 1,024 x 64 -> {vocab}: {median_ms(new):.1f} ms against "
          f"{median_ms(old):.1f} ms ({change:+.1f} %), loss {step().item():.7f} against {loss_old:.7f}")

for ckpt in sys.argv[1:]:
    loaded = load_run(ckpt)
    for name in ("ode", "commit", "adaptive"):
        sampler = Sampler(name=name, steps=4)
        den = sampler.denoiser(loaded, use_ema=True)
        draw = lambda: generate(den, sampler, num_samples=32, seq_len=64, seed=0, batch_size=32)
        with reuse_packed_weights():
            ids_new = draw().ids
            with direct():
                ids_old = draw().ids
            new, old = paired(draw, 15)
        diffs = [a - b for a, b in zip(new, old)]
        print(f"{ckpt} {name} K = 4: new minus direct {median_ms(diffs):+.2f} ms per batch "
              f"({median_ms(diffs) / median_ms(old) * 100:+.1f} % of {median_ms(old):.0f} ms), "
              f"tokens identical: {torch.equal(ids_new, ids_old)}")
