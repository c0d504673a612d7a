"""Each change of the fourth block of docs/benchmarks.md ("Sampling at the machine's limit") on its own,
in one process: the same ``ode`` K = 4 batch (32 x 64 tokens, 2 threads, the distilled quickstart student)
with every change, then with one of them undone, alternated call by call, and the median of the paired
differences against the full set (positive: undoing the change costs that much); once with each
``generate`` call reordering its own weights and once inside one packing block (the steady state); then
the GEMMs alone with the plain and the reordered weight, and the cost of the reorder.

Undone here: adaLN's modulation and the gated residuals as a multiply and an add (the code before the
change, restated below); the argmax decode with the log-sum-exp pass (``OnlineLogits`` built with its
default); the weights reordered for oneDNN (the packing probe's result forced off, so oneDNN reads the
plain weight on every matmul).

    python docs/bench/sampling_passes_paired.py [CKPT] [PAIRS]
"""

import contextlib
import statistics
import sys
import time

import torch
import torch.nn.functional as F

import textflow.backbones.dit as dit
import textflow.kernels.linear as kl
import textflow.readouts.text as text_readout
from textflow.allocator import keep_freed_memory
from textflow.checkpoint import load_run
from textflow.kernels.readout_chunks import position_stats
from textflow.samplers import Sampler
from textflow.sampling.generate import generate

CKPT = sys.argv[1] if len(sys.argv) > 1 else "outputs/reproduce/fast/distill/checkpoints/distilled.ckpt"
PAIRS = int(sys.argv[2]) if len(sys.argv) > 2 else 15


def two_pass_modulate(x, shift, scale):
    return x * (1 + scale) + shift


def two_pass_block(self, x, c, index=None):
    mod = self.ada(F.silu(c))
    sh1, sc1, g1, sh2, sc2, g2 = (mod if index is None else dit.gather_rows(mod, index)).chunk(6, dim=-1)
    x = x + g1 * self.attn(two_pass_modulate(self.norm1(x), sh1, sc1))
    return x + g2 * self.mlp(two_pass_modulate(self.norm2(x), sh2, sc2))


def argmax_with_logsumexp(readout, x, *, head=None):
    return torch.cat([s.indices[:, 0] for s in position_stats(readout, x, head=head)]).view(x.shape[:2])


kl.onednn_available()  # runs the probes, so the packing flag below is set before it is toggled
current = {"block": dit.DiTBlock.forward, "argmax": text_readout.readout_argmax, "packable": kl._state["packable"]}
undone = {"block": two_pass_block, "argmax": argmax_with_logsumexp, "packable": False}


def use(variant: str) -> None:
    """``all``: every change; else the named change undone."""
    dit.DiTBlock.forward = undone["block"] if variant == "block" else current["block"]
    text_readout.readout_argmax = undone["argmax"] if variant == "argmax" else current["argmax"]
    kl._state["packable"] = undone["packable"] if variant == "packable" else current["packable"]


keep_freed_memory()
torch.set_num_threads(2)
sampler = Sampler(name="ode", steps=4)
den = sampler.denoiser(load_run(CKPT), use_ema=True)
variants = ("all", "block", "argmax", "packable")


def measure(steady: bool) -> None:
    """``steady``: every call inside one reuse_packed_weights block (bench sampling's steady state, weights
    reordered once); else each generate call reorders its weights, as a one-batch sampling run does."""
    times = {v: [] for v in variants}
    with kl.reuse_packed_weights() if steady else contextlib.nullcontext():
        for round in range(PAIRS + 1):
            for variant in variants:
                use(variant)
                start = time.perf_counter()
                generate(den, sampler, num_samples=32, seq_len=64, seed=0, batch_size=32)
                if round:  # the first round warms up
                    times[variant].append(time.perf_counter() - start)
    use("all")
    base = statistics.median(times["all"])
    print(f"ode K=4, every change, {'one packing block' if steady else 'packing per call'}: median {base:.3f} s "
          f"over {PAIRS} calls")
    for variant, label in (("block", "adaLN in two passes"), ("argmax", "argmax with the log-sum-exp"),
                           ("packable", "weights not reordered")):
        paired = statistics.median(u - a for u, a in zip(times[variant], times["all"]))
        print(f"  {label}: median {statistics.median(times[variant]):.3f} s, paired {paired * 1e3:+.1f} ms "
              f"({paired / base * 100:+.1f} % of a batch)")


def gemm_times() -> None:
    """oneDNN's GEMM at the student's shapes with the plain weight and with the reordered one, at 2,048 rows
    (a batch of 32 x 64 tokens) and 32 rows (an AR decoding step of 32 sequences); best of 7 x 50 calls."""
    def best_us(fn):
        for _ in range(10):
            fn()
        runs = []
        for _ in range(7):
            start = time.perf_counter()
            for _ in range(50):
                fn()
            runs.append((time.perf_counter() - start) / 50)
        return min(runs) * 1e6

    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for rows in (2048, 32):
            for out, inp in ((768, 256), (256, 256), (1024, 256), (256, 1024)):
                x, w = torch.randn(rows, inp, generator=gen), torch.randn(out, inp, generator=gen) / 16
                b, packed = torch.randn(out, generator=gen), kl._reorder(w, rows)
                plain = best_us(lambda: kl._fused_op()(x, w, b, "none", [], ""))
                reordered = best_us(lambda: kl._fused_op()(x, packed, b, "none", [], ""))
                reorder = best_us(lambda: kl._reorder(w, rows))
                print(f"  {rows} x {inp} -> {out}: plain weight {plain:.0f} us, reordered {reordered:.0f} us "
                      f"({(reordered / plain - 1) * 100:+.0f} %), the reorder itself {reorder:.0f} us")


measure(steady=False)
measure(steady=True)
print("oneDNN GEMMs, plain against reordered weight:")
gemm_times()
