"""Training (conf/stage, conf/module): one module per stage, each with its LightningModule and its
builder (what ``train.py stage=<name>`` calls), plus what the stages share (EMA, LR schedule, per-step
seeding)."""

from textflow.training.autoencoder import AutoencoderModule
from textflow.training.distill import DistillModule
from textflow.training.flow import LatentFlowModule
from textflow.training.optim import WarmupCosine

__all__ = ["AutoencoderModule", "DistillModule", "LatentFlowModule", "WarmupCosine"]
