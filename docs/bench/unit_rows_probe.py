"""The tied readout's weight and its backward (`textflow.kernels.unit_rows`) at a 131,072-token table of 64
features, as whole-table passes (`BLOCK_ROWS` = the table) and in cache-sized blocks (the default), checked
equal; median of 15 rounds after a warm-up, 2 threads (docs/benchmarks.md, "Large vocabularies").

    python docs/bench/unit_rows_probe.py [VOCAB] [FEATURES]
"""

import sys

import torch

import textflow.kernels.unit_rows as unit_rows
from textflow.allocator import keep_freed_memory
from textflow.bench.runner import time_round_robin

keep_freed_memory()
torch.set_num_threads(2)
V = int(sys.argv[1]) if len(sys.argv) > 1 else 131072
D = int(sys.argv[2]) if len(sys.argv) > 2 else 64
g = torch.Generator().manual_seed(0)
table = torch.randn(V, D, generator=g).requires_grad_(True)
log_scale = torch.tensor(0.3, requires_grad=True)
incoming = torch.randn(V, D, generator=g)


def forward_backward(block_rows):
    def run():
        unit_rows.BLOCK_ROWS = block_rows
        weight = unit_rows.scaled_unit_rows(table, log_scale)
        grads = torch.autograd.grad(weight, [table, log_scale], incoming)
        return weight.detach(), *grads
    return run


whole, blocks = forward_backward(V), forward_backward(unit_rows.BLOCK_ROWS)
for a, b in zip(whole(), blocks()):
    torch.testing.assert_close(a, b)
timed = time_round_robin({"whole table": whole, f"blocks of {unit_rows.BLOCK_ROWS}": blocks},
                         warmup=1, repeats=15)
for name, summary in timed.items():
    print(f"{name:16s} {1e3 * summary['median_s']:6.1f} ms")
