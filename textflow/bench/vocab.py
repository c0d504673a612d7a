"""Training step and training-time diagnostics across vocabulary sizes (docs/benchmarks.md, "Large
vocabularies").

For each vocabulary size V the same model (``backbone`` preset, the embedding autoencoder, batch x
seq_len random token ids; no tokenizer is needed, so 128 k is as easy as 4 k) is built from the real
configs and timed for one optimizer step and one ``ReadoutDiagnostics`` evaluation (the callback's
defaults on ``blocks`` blocks). Two targets:

* ``overhead = diagnostics / (interval x step) <= 5 %``;
* ``step_vs_small = (step - extra readout) / step at the smallest V <= 1.5``: the step beyond the
  readout's own extra FLOPs, ``6 (V - V_small) D tokens`` (forward + backward of the readout matmul)
  at the matmul peak measured in the same run, against the smallest vocabulary's step.
"""

from __future__ import annotations

import torch
from hydra import compose, initialize_config_dir

from textflow.bench.diagnostics import OVERHEAD_TARGET, time_monitor, time_training_step
from textflow.bench.train import matmul_peak

STEP_TARGET = 1.5


def build(*, conf_dir: str, preset: str, vocab: int, seq_len: int, batch: int, overrides=()):
    from textflow.checkpoint import build_module

    with initialize_config_dir(config_dir=conf_dir, version_base="1.3"):
        cfg = compose("train", overrides=[f"backbone={preset}", f"data.seq_len={seq_len}", f"data.batch_size={batch}",
                                          "logger=none", "callbacks=none", *overrides])
    return build_module(cfg, vocab_size=vocab, seq_len=seq_len)


def run(*, conf_dir: str, vocabs: list[int], preset: str = "dit_tiny", batch: int = 16, seq_len: int = 64,
        blocks: int = 16, interval: int = 200, repeats: int = 3, overrides=()) -> list[dict]:
    peak = matmul_peak()
    rows = []
    for vocab in sorted(vocabs):
        torch.manual_seed(0)
        module = build(conf_dir=conf_dir, preset=preset, vocab=vocab, seq_len=seq_len, batch=batch,
                       overrides=overrides)
        g = torch.Generator().manual_seed(0)
        step = time_training_step(module, torch.randint(0, vocab, (batch, seq_len), generator=g), repeats=repeats)
        diag = time_monitor(module, torch.randint(0, vocab, (blocks, seq_len), generator=g), repeats=repeats)
        latent_dim = module.net["autoencoder"].latent_dim
        rows.append({"vocab": vocab, "preset": preset, "batch": batch, "seq_len": seq_len, "blocks": blocks,
                     "latent_dim": latent_dim, "train_step_s": step["median_s"], "diagnostics_s": diag["median_s"],
                     "overhead": diag["median_s"] / (interval * step["median_s"]),
                     "readout_gflop_per_step": 6 * vocab * latent_dim * batch * seq_len / 1e9,
                     "peak_gflops": peak / 1e9})
    small = rows[0]
    for row in rows:
        extra = (row["readout_gflop_per_step"] - small["readout_gflop_per_step"]) * 1e9 / peak
        row["step_vs_small"] = (row["train_step_s"] - extra) / small["train_step_s"]
        row["met"] = row["overhead"] <= OVERHEAD_TARGET and row["step_vs_small"] <= STEP_TARGET
    return rows
