"""Cost of the training-time diagnostics callback relative to the training it rides on.

Times one ``ReadoutDiagnostics`` evaluation (the readout kind's ``monitor``, :mod:`textflow.readouts`, on
``blocks`` held-out blocks, all diagnostics on: DABI / flip / tube law for a parallel readout, the commit
ablation for an AR decoder) and one optimizer step of the same model at the checkpoint's batch size,
and reports the overhead at a validation interval of ``interval`` steps:
``diagnostics / (interval x step)`` (target <= 5 %)."""

from __future__ import annotations

import torch

from textflow.bench.runner import time_call
from textflow.checkpoint import load_run


def run(*, ckpt: str, interval: int = 200, blocks: int = 16, repeats: int = 3) -> list[dict]:
    loaded = load_run(ckpt)
    module = loaded.module.train()
    data = loaded.config.data
    seq_len, batch = int(loaded.info["seq_len"]), int(data.batch_size)
    vocab = int(loaded.info["vocab_size"])
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (batch, seq_len), generator=g)
    optimizer = module.optimizer_factory(params=module.net.parameters())
    module.log = module.log_dict = lambda *a, **k: None  # no trainer attached

    def step():
        loss = module.training_step(ids, 0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        module.ema.update(module.net)

    train = time_call(step, warmup=2, repeats=max(repeats, 5), desc="train step")
    val_ids = torch.randint(0, vocab, (blocks, seq_len), generator=g)
    den = module.denoiser(use_ema=True)
    monitor = den.autoencoder.readout_kind.monitor
    diag = time_call(lambda: monitor(den, val_ids), warmup=1, repeats=repeats, desc="diagnostics")
    overhead = diag["median_s"] / (interval * train["median_s"])
    return [{"batch": batch, "seq_len": seq_len, "blocks": blocks, "interval": interval,
             "train_step_s": train["median_s"], "diagnostics_s": diag["median_s"], "overhead": overhead,
             "target": 0.05, "met": overhead <= 0.05}]
