"""The vocabulary-sized operators of one `bench vocab` training step, each timed as it runs (a
``TorchDispatchMode`` that times every ATen call and keeps those touching a tensor of at least 16 V
numbers), mean over 3 steps after 3 warm-up steps, 2 threads: what makes up the table work of the step's
rest (docs/benchmarks.md, "Large vocabularies", "The rest measured inside the step"). The mode's own
overhead inflates every figure a little.

    python docs/bench/vocab_table_ops_probe.py [PRESET] [VOCAB]      # default dit_tiny 131072
"""

import collections
import sys
import time
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from textflow.allocator import keep_freed_memory
from textflow.bench.diagnostics import training_step_parts
from textflow.bench.vocab import build

keep_freed_memory()
torch.set_num_threads(2)
preset = sys.argv[1] if len(sys.argv) > 1 else "dit_tiny"
vocab = int(sys.argv[2]) if len(sys.argv) > 2 else 131072
STEPS = 3


class TimedOps(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.seconds = collections.defaultdict(float)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        start = time.perf_counter()
        out = func(*args, **(kwargs or {}))
        spent = time.perf_counter() - start
        tensors = [t for t in torch.utils._pytree.tree_leaves((args, out)) if isinstance(t, torch.Tensor)]
        if any(t.numel() >= 16 * vocab for t in tensors):
            self.seconds[(func.__name__, tuple(tuple(t.shape) for t in tensors)[:3])] += spent
        return out


torch.manual_seed(0)
conf = str(Path(__file__).resolve().parents[2] / "conf")
module = build(conf_dir=conf, preset=preset, vocab=vocab, seq_len=64, batch=16)
step = training_step_parts(module, torch.randint(0, vocab, (16, 64)))["step"]
for _ in range(STEPS):
    step()
mode = TimedOps()
start = time.perf_counter()
with mode:
    for _ in range(STEPS):
        step()
print(f"{preset}, V = {vocab}: {(time.perf_counter() - start) / STEPS * 1000:.1f} ms a step under the mode")
for (name, shapes), spent in sorted(mode.seconds.items(), key=lambda kv: -kv[1]):
    print(f"{spent / STEPS * 1000:8.2f} ms  {name}  {shapes}")
