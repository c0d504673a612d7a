"""``AutoencoderModule``: stage one of two-stage training (``train.py stage=autoencoder``).

It trains a latent autoencoder alone on its own loss (``autoencoder.loss``) and validates its clean
round trip (``autoencoder.reconstruction_metrics``: token accuracy and CE for text, MSE for images).
The checkpoint is self-describing (``"textflow"`` run info with ``kind: autoencoder``); the flow
stage loads it with ``autoencoder_ckpt=...`` (textflow.training.stages).
"""

from __future__ import annotations

from typing import Callable, Optional

import lightning as L
import torch
from torch import Tensor

from textflow.autoencoders.base import LatentAutoencoder
from textflow.training.rng import SeededTrainingSteps


class AutoencoderModule(SeededTrainingSteps, L.LightningModule):
    """Args:
    autoencoder: the latent autoencoder to train.
    optimizer: ``_partial_`` optimizer factory taking ``params``.
    scheduler: optional ``_partial_`` LR-scheduler factory taking the optimizer (stepped per step).
    """

    def __init__(self, *, autoencoder: LatentAutoencoder, optimizer: Callable, scheduler: Optional[Callable] = None):
        super().__init__()
        self.autoencoder = autoencoder
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.run_info: dict = {}

    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        out = self.autoencoder.loss(batch)
        self.log_dict({f"train/{'loss' if k == 'loss' else k}": v for k, v in out.items()},
                      on_step=True, on_epoch=False, batch_size=batch.shape[0])
        self.log("loss", out["loss"], prog_bar=True, logger=False, batch_size=batch.shape[0])
        return out["loss"]

    @torch.no_grad()
    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        metrics = self.autoencoder.reconstruction_metrics(batch)
        self.log_dict({f"val/{k}": v for k, v in metrics.items()}, on_step=False, on_epoch=True, sync_dist=True,
                      batch_size=batch.shape[0], prog_bar=True)

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=[p for p in self.parameters() if p.requires_grad])
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": self.scheduler_factory(optimizer), "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["textflow"] = dict(self.run_info)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.run_info = dict(checkpoint.get("textflow", {}))
