"""Training step and training-time diagnostics across vocabulary sizes (docs/benchmarks.md, "Large
vocabularies").

For each vocabulary size V the same model (``backbone`` preset, the embedding autoencoder, batch x
seq_len random token ids; no tokenizer is needed, so 128 k is as easy as 4 k) is built from the real
configs and timed for one optimizer step (and its optimizer step and EMA update alone, so the rest below
can be attributed), one ``ReadoutDiagnostics`` evaluation (the callback's
defaults on ``blocks`` blocks), and the readout's own work at the step's shape: its cross-entropy
forward and backward alone (``readout_s``: the chunked kernel textflow trains with), beside the plain
``F.cross_entropy`` of the full logits (``plain_readout_s``) for reference. The step and the two readouts
are timed in rounds (:func:`textflow.bench.runner.time_round_robin`), since their difference is what the
second target reads. Two targets:

* ``overhead = diagnostics / (interval x step) <= 5 %``;
* ``rest_vs_small = rest_s / rest_s at the smallest V <= 1.5``, with ``rest_s`` the median over at least
  :data:`MIN_ROUNDS` steps of each step's time minus the seconds that same step spent inside the readout's
  cross-entropy kernel, forward and backward (:func:`readout_seconds`; ``rest_rounds_s`` keeps every
  step): everything the step does beyond the readout's own matmuls and softmax is no slower than with a
  small vocabulary (no hidden per-vocabulary cost: the embedding table, its normalisation, the optimizer
  and EMA over it stay small). Both terms come from one step, so a host whose speed drifts moves them
  together; the earlier measure, a step minus the readout timed alone in the same round, stays as
  ``rest_paired_s`` (at 128 k it moved by more than the 4 k rest between runs: docs/benchmarks.md).

Each row also has the step's model FLOPs (``step_tflop``, :func:`textflow.bench.train.model_flops_per_step`'s
count: the backbone's and the readout's) and its ``mfu`` against the matmul peak. On the one-hot latent
(``--override experiment=onehot``) the vocabulary-sized work is the DiT's own input and output projections,
not a readout, so ``rest_s`` does not isolate it; there an MFU that holds from the smallest V to the largest
is what says a large vocabulary costs no more than its FLOPs.
"""

from __future__ import annotations

import statistics
import time
from contextlib import contextmanager
from typing import Iterator

import torch
from hydra import compose, initialize_config_dir

import torch.nn.functional as F

from textflow.bench.diagnostics import OVERHEAD_TARGET, time_monitor, training_step_parts
from textflow.bench.runner import time_round_robin
from textflow.bench.train import fastest, matmul_peaks, model_flops_per_step, readout_forward_flops
from textflow.kernels.cross_entropy import _LinearCrossEntropy

STEP_TARGET = 1.5
# rounds of the step and the readout paired for ``rest_s``, whatever ``repeats`` says: on one host
# dit_small's 128 k rest read 1.03-1.80x its 4 k rest over three runs of 5 rounds, 1.04-1.16x over three of
# 11 (docs/benchmarks.md, "Large vocabularies")
MIN_ROUNDS = 11


@contextmanager
def readout_seconds() -> Iterator[list[float]]:
    """Inside the block, every forward and backward of the readout's cross-entropy kernel
    (:func:`textflow.kernels.linear_cross_entropy`) appends its wall seconds to the yielded list."""
    spent: list[float] = []
    forward, backward = _LinearCrossEntropy.forward, _LinearCrossEntropy.backward

    def timed(fn):
        def call(*args):
            start = time.perf_counter()
            try:
                return fn(*args)
            finally:
                spent.append(time.perf_counter() - start)
        return staticmethod(call)

    _LinearCrossEntropy.forward, _LinearCrossEntropy.backward = timed(forward), timed(backward)
    try:
        yield spent
    finally:
        _LinearCrossEntropy.forward = staticmethod(forward)
        _LinearCrossEntropy.backward = staticmethod(backward)


def build(*, conf_dir: str, preset: str, vocab: int, seq_len: int, batch: int, overrides=()):
    from textflow.checkpoint import build_module

    with initialize_config_dir(config_dir=conf_dir, version_base="1.3"):
        cfg = compose("train", overrides=[f"backbone={preset}", f"data.seq_len={seq_len}", f"data.batch_size={batch}",
                                          "logger=none", "callbacks=none", *overrides])
    return build_module(cfg, vocab_size=vocab, seq_len=seq_len)


def readout_calls(autoencoder, ids: torch.Tensor) -> tuple:
    """(chunked readout CE forward + backward, the same with ``F.cross_entropy`` of the full logits), as
    callables."""
    x = autoencoder.encode(ids).detach().requires_grad_(True)

    def chunked():
        autoencoder.readout_cross_entropy(x, ids)[0].backward()

    def plain():
        F.cross_entropy(autoencoder.decode(x).float().flatten(0, 1), ids.flatten()).backward()

    return chunked, plain


def run(*, conf_dir: str, vocabs: list[int], preset: str = "dit_tiny", batch: int = 16, seq_len: int = 64,
        blocks: int = 16, interval: int = 200, repeats: int = 3, overrides=()) -> list[dict]:
    peak_kernel, peak = fastest(matmul_peaks())
    rows = []
    for vocab in sorted(vocabs):
        torch.manual_seed(0)
        module = build(conf_dir=conf_dir, preset=preset, vocab=vocab, seq_len=seq_len, batch=batch,
                       overrides=overrides)
        g = torch.Generator().manual_seed(0)
        parts = training_step_parts(module, torch.randint(0, vocab, (batch, seq_len), generator=g))
        diag = time_monitor(module, torch.randint(0, vocab, (blocks, seq_len), generator=g), repeats=repeats)
        chunked, plain = readout_calls(module.net["autoencoder"], torch.randint(0, vocab, (batch, seq_len),
                                                                                 generator=g))
        inside: list[float] = []  # per step, its seconds in the readout's kernel

        def step():
            with readout_seconds() as spent:
                parts["step"]()
            inside.append(sum(spent))

        # in rounds, so that the step and the readout alone see the host in the same state
        warmup = 2
        timed = time_round_robin({**parts, "step": step, "readout": chunked, "plain": plain}, warmup=warmup,
                                 repeats=max(repeats, MIN_ROUNDS),
                                 desc=f"step, its parts and readout, V = {vocab}",
                                 keep_times=True)
        steps_s, in_step = timed["step"]["times_s"], inside[warmup:]
        rest_rounds = [s - r for s, r in zip(steps_s, in_step, strict=True)]
        paired = [s - r for s, r in zip(steps_s, timed["readout"]["times_s"], strict=True)]
        readout_s, plain_s = timed["readout"]["median_s"], timed["plain"]["median_s"]
        latent_dim = module.net["autoencoder"].latent_dim
        step_flops = model_flops_per_step(module, batch=batch, seq_len=seq_len)
        # forward + backward of the readout as the autoencoder counts it (6 V D a position for a matmul)
        readout_flops = 3 * readout_forward_flops(module.net["autoencoder"], tokens=batch * seq_len)
        rows.append({"vocab": vocab, "preset": preset, "batch": batch, "seq_len": seq_len, "blocks": blocks,
                     "latent_dim": latent_dim, "train_step_s": timed["step"]["median_s"],
                     "diagnostics_s": diag["median_s"],
                     "overhead": diag["median_s"] / (interval * timed["step"]["median_s"]),
                     "readout_s": readout_s, "plain_readout_s": plain_s,
                     "readout_in_step_s": statistics.median(in_step),
                     "rest_paired_s": statistics.median(paired),
                     "optimizer_s": timed["optimizer"]["median_s"], "ema_s": timed["ema"]["median_s"],
                     "readout_gflop_per_step": readout_flops / 1e9,
                     "readout_gflops": readout_flops / readout_s / 1e9,
                     "peak_gflops": peak / 1e9, "peak_kernel": peak_kernel, "step_tflop": step_flops / 1e12,
                     "mfu": step_flops / timed["step"]["median_s"] / peak,
                     "rest_s": statistics.median(rest_rounds), "rest_rounds_s": rest_rounds})
    small = rows[0]
    for row in rows:
        row["rest_vs_small"] = row["rest_s"] / max(small["rest_s"], 1e-9)
        # what the rest is made of: the optimizer and EMA over every parameter (the table included),
        # and the forward / backward outside the readout CE (the backbone, the encoder's lookup)
        row["rest_other_s"] = row["rest_s"] - row["optimizer_s"] - row["ema_s"]
        row["met"] = row["overhead"] <= OVERHEAD_TARGET and row["rest_vs_small"] <= STEP_TARGET
    return rows
