"""Stage ``autoencoder`` (``train.py stage=autoencoder``), stage one of two-stage training
(docs/autoencoders.md, "Two-stage training"): ``AutoencoderModule``, its builder
:func:`autoencoder_stage` (conf/stage/autoencoder.yaml), and :func:`read_autoencoder`, the reader of
the checkpoint it writes.

The module trains a latent autoencoder alone on its own loss (``autoencoder.loss``) and validates its
clean round trip (``autoencoder.reconstruction_metrics``: token accuracy and CE for text, MSE for
images). The checkpoint is self-describing (``"textflow"`` run info with ``kind: autoencoder``); the
flow stage loads it with ``autoencoder_ckpt=...`` (:func:`textflow.training.flow.flow_stage`).
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import Tensor

from textflow.autoencoders.base import LatentAutoencoder
from textflow.checkpoint import (build_autoencoder, check_same_vocabulary, checkpoint_config, make_run_info,
                                 read_checkpoint)
from textflow.errors import CheckpointError
from textflow.training.base import StageKeys, TrainingModule, tokenizer_vocabulary


class AutoencoderModule(TrainingModule):
    """Args:
    autoencoder: the latent autoencoder to train.
    optimizer: ``_partial_`` optimizer factory taking ``params``.
    scheduler: optional LR-schedule factory taking the optimizer (stepped per step).
    """

    def __init__(self, *, autoencoder: LatentAutoencoder, optimizer: Callable, scheduler: Optional[Callable] = None):
        super().__init__(optimizer=optimizer, scheduler=scheduler)
        self.autoencoder = autoencoder

    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        out = self.autoencoder.loss(batch)
        self.log_dict({f"train/{k}": v for k, v in out.items()},
                      on_step=True, on_epoch=False, batch_size=batch.shape[0])
        self.log("loss", out["loss"], prog_bar=True, logger=False, batch_size=batch.shape[0])
        return out["loss"]

    @torch.no_grad()
    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        metrics = self.autoencoder.reconstruction_metrics(batch)
        self.log_dict({f"val/{k}": v for k, v in metrics.items()}, on_step=False, on_epoch=True, sync_dist=True,
                      batch_size=batch.shape[0], prog_bar=True)


ONE_STAGE = "stage one trains the autoencoder alone; stage=flow autoencoder_ckpt=... trains the flow on it"
AUTOENCODER = StageKeys("autoencoder", reads=("autoencoder",), unread={
    "backbone": ONE_STAGE,
    "path": ONE_STAGE,
    "module": "its optimizer and LR schedule are stage.optimizer and stage.scheduler",
    "autoencoder_ckpt": "it trains a new autoencoder; pass autoencoder_ckpt to stage=flow",
    "teacher_ckpt": "only stage=distill and stage=flow_map read it",
})


def autoencoder_stage(cfg: DictConfig, *, tokenizer, seq_len: int, optimizer: Callable,
                      scheduler: Optional[Callable] = None) -> AutoencoderModule:
    """``stage=autoencoder``: the autoencoder of ``cfg.autoencoder`` alone, on ``cfg.data``."""
    AUTOENCODER.refuse_unread_overrides(cfg)
    tokenizer_json, vocab_size = tokenizer_vocabulary(tokenizer)
    model = build_autoencoder(cfg, vocab_size=vocab_size)
    if tokenizer is not None:
        model.bind_tokenizer(tokenizer)
    module = AutoencoderModule(autoencoder=model, optimizer=optimizer, scheduler=scheduler)
    module.run_info = make_run_info(cfg, tokenizer_json=tokenizer_json, vocab_size=vocab_size, seq_len=seq_len,
                                    kind="autoencoder")
    return module


def read_autoencoder(path: str, *, tokenizer, expected: DictConfig) -> tuple[dict, dict]:
    """(autoencoder config, weights) of a ``stage=autoencoder`` checkpoint, checked against this run:
    its kind, its vocabulary, and the autoencoder class and latent width ``expected`` configures."""
    ckpt = read_checkpoint(path, key="autoencoder_ckpt")
    info = ckpt["textflow"]
    if info.get("kind") != "autoencoder":
        raise CheckpointError(f"autoencoder_ckpt={path!r} is a {info.get('kind', 'flow')!r} checkpoint, not one "
                              "written by train.py stage=autoencoder")
    tokenizer_json, vocab_size = tokenizer_vocabulary(tokenizer)
    check_same_vocabulary("autoencoder_ckpt", path, info, tokenizer_json=tokenizer_json, vocab_size=vocab_size)
    ae_cfg = checkpoint_config(info, source=f"autoencoder_ckpt={path!r}").get("autoencoder")
    if ae_cfg is None:
        raise CheckpointError(f"autoencoder_ckpt={path!r} stores no autoencoder config")
    theirs = (ae_cfg._target_, ae_cfg.get("latent_dim"))
    ours = (expected._target_, expected.get("latent_dim"))
    if theirs != ours:
        raise CheckpointError(f"autoencoder_ckpt={path!r} holds {theirs[0]} with latent_dim={theirs[1]}, but this "
                              f"run configures {ours[0]} with latent_dim={ours[1]}; select the matching "
                              f"autoencoder=... and autoencoder.latent_dim={theirs[1]}")
    prefix = "autoencoder."
    weights = {k[len(prefix):]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    with open_dict(ae_cfg):
        if info.get("vocab_size") is not None:
            ae_cfg.vocab_size = info["vocab_size"]
    return OmegaConf.to_container(ae_cfg), weights
