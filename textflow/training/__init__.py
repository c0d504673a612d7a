"""Training (conf/stage, conf/module, conf/optimizer; docs/architecture.md): one module per stage, each
with its LightningModule and its builder (what ``train.py stage=<name>`` calls: ``flow.flow_stage``,
``autoencoder.autoencoder_stage``, ``distill.distill_stage``, ``ar_twin.ar_twin_stage``), and what the
stages share: the base class :class:`~textflow.training.base.TrainingModule` (optimizer and LR schedule,
checkpoint run info, per-step seeding), the vocabulary check of a checkpoint handed to a run, the
declaration of the keys a stage reads, the EMA, the LR schedule and the Muon + AdamW optimizer."""

from textflow.training.ar_twin import ARTwinModule
from textflow.training.autoencoder import AutoencoderModule
from textflow.training.base import TrainingModule
from textflow.training.distill import DistillModule
from textflow.training.flow import LatentFlowModule
from textflow.training.optim import MuonWithAdamW, WarmupCosine

__all__ = ["ARTwinModule", "AutoencoderModule", "DistillModule", "LatentFlowModule", "MuonWithAdamW",
           "TrainingModule", "WarmupCosine"]
