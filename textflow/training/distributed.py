"""Checks for a run of several processes (docs/training.md, "Past one machine: torchrun, SLURM, FSDP").

:class:`DistributedChecks`, which train.py adds to every run, stops a multi-process run with one line
(exit status 2 through the entry point) where it would otherwise hang or fail with a traceback:

* every process starts at the same step. Each process looks for the checkpoint to resume from itself
  (``<run dir>/checkpoints/last.ckpt``, or ``ckpt_path=``); a node that does not see the file rank 0
  resumes from (a run folder that is not on a filesystem every node shares) would train from step 0
  and wait at a collective the others never reach.
* under FSDP (conf/trainer/fsdp.yaml) the model has no scalar parameter (FSDP cannot shard one), and
  no callback reads the EMA copy outside the model's forward: that copy is sharded like the online
  networks, and only the forward (training and validation steps) gathers it.
"""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.strategies import FSDPStrategy

from textflow.callbacks import PerKValidation, ReadoutDiagnostics, SampleTextLogger
from textflow.errors import CheckpointError, ConfigError

# callbacks that read pl_module.denoiser(use_ema=True) outside the forward, with their config keys
READ_OUTSIDE_FORWARD = ((SampleTextLogger, "callbacks.samples"), (ReadoutDiagnostics, "callbacks.diagnostics"),
                        (PerKValidation, "callbacks.per_k"))


def check_same_start(trainer: L.Trainer) -> None:
    """Raise :class:`CheckpointError` unless every process starts (resumes) at the same global step."""
    step = torch.tensor([trainer.global_step], device=trainer.strategy.root_device)
    steps = [int(s) for s in trainer.strategy.all_gather(step).flatten().tolist()]
    if len(set(steps)) > 1:
        ranks = ", ".join(f"rank {rank}: {s}" for rank, s in enumerate(steps))
        raise CheckpointError(f"the {len(steps)} processes start at different steps ({ranks}): each resumes from "
                              "<run dir>/checkpoints/last.ckpt (or ckpt_path=) as it sees it; put the run folder on a "
                              "filesystem every node shares and give every process the same hydra.run.dir")


def check_shardable(trainer: L.Trainer, pl_module: L.LightningModule) -> None:
    """Raise :class:`ConfigError` if FSDP cannot shard ``pl_module`` or a callback reads its EMA copy
    outside the forward."""
    scalars = [name for name, p in pl_module.named_parameters() if p.dim() == 0]
    if scalars:
        raise ConfigError(f"trainer=fsdp cannot shard the scalar parameters {', '.join(scalars[:4])}; train this model "
                          "with trainer=ddp, or use an autoencoder without them (autoencoder=embed has one with "
                          "readout=tied: autoencoder.readout=linear)")
    on = [key for cls, key in READ_OUTSIDE_FORWARD
          if any(isinstance(cb, cls) and cb.every_n_validations > 0 for cb in trainer.callbacks)]
    if on:
        raise ConfigError(f"trainer=fsdp shards the EMA copy that {', '.join(on)} read outside the model's forward; "
                          f"turn them off ({' '.join(f'{key}.every_n_validations=0' for key in on)}) and sample the "
                          "final checkpoint with sample.py")


class DistributedChecks(L.Callback):
    """The module docstring's checks, at setup (FSDP) and at the start of training (the resumed step)."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if isinstance(trainer.strategy, FSDPStrategy):
            check_shardable(trainer, pl_module)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.world_size > 1:
            check_same_start(trainer)
