"""Cost of the training-time diagnostics callback relative to the training it rides on.

Times one ``ReadoutDiagnostics`` evaluation (the readout kind's ``monitor``, :mod:`textflow.readouts`, on
``blocks`` held-out blocks, with the callback's defaults: DABI on 3 scales with 4 isotropic draws, flip /
tube law for a parallel readout, the commit ablation for an AR decoder) and one optimizer step of the
same model at the checkpoint's batch size, and reports the overhead at a validation interval of
``interval`` steps: ``diagnostics / (interval x step)`` (target <= 5 %)."""

from __future__ import annotations

import torch

from textflow.bench.runner import time_call
from textflow.checkpoint import load_run

OVERHEAD_TARGET = 0.05


def time_training_step(module, ids: torch.Tensor, *, repeats: int) -> dict:
    """Median time of one optimizer step (forward, backward, step, EMA) of ``module`` on ``ids``."""
    return time_call(training_step(module, ids), warmup=2, repeats=max(repeats, 5), desc="train step")


def training_step(module, ids: torch.Tensor):
    """A callable that runs one optimizer step (forward, backward, step, EMA) of ``module`` on ``ids``."""
    return training_step_parts(module, ids)["step"]


def training_step_parts(module, ids: torch.Tensor) -> dict:
    """Callables sharing one optimizer: ``step`` (forward, backward, step, EMA of ``module`` on ``ids``),
    and its last two parts alone, ``optimizer`` (the optimizer's step on the gradients the last ``step``
    left) and ``ema`` (the EMA update), so a benchmark can tell where a step's time goes."""
    module.train()
    optimizer = module.make_optimizer()  # as training builds it (fused: auto decided for full precision)
    module.log = module.log_dict = lambda *a, **k: None  # no trainer attached

    def step():
        loss = module.training_step(ids, 0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        module.ema.update(module.net)

    return {"step": step, "optimizer": optimizer.step, "ema": lambda: module.ema.update(module.net)}


def time_monitor(module, val_ids: torch.Tensor, *, repeats: int) -> dict:
    """Median time of what the training callback measures (the readout kind's ``monitor``, defaults)."""
    den = module.denoiser(use_ema=True)
    monitor = den.autoencoder.readout_kind.monitor
    with torch.no_grad():
        return time_call(lambda: monitor(den, val_ids), warmup=1, repeats=repeats, desc="diagnostics")


def run(*, ckpt: str, interval: int = 200, blocks: int = 16, repeats: int = 3) -> list[dict]:
    loaded = load_run(ckpt)
    module = loaded.module
    seq_len, batch = int(loaded.info["seq_len"]), int(loaded.config.data.batch_size)
    vocab = int(loaded.info["vocab_size"])
    g = torch.Generator().manual_seed(0)
    train = time_training_step(module, torch.randint(0, vocab, (batch, seq_len), generator=g), repeats=repeats)
    diag = time_monitor(module, torch.randint(0, vocab, (blocks, seq_len), generator=g), repeats=repeats)
    overhead = diag["median_s"] / (interval * train["median_s"])
    return [{"batch": batch, "seq_len": seq_len, "blocks": blocks, "interval": interval,
             "train_step_s": train["median_s"], "diagnostics_s": diag["median_s"], "overhead": overhead,
             "target": OVERHEAD_TARGET, "met": overhead <= OVERHEAD_TARGET}]
