"""Stage ``ar_twin`` (``train.py experiment=ar_twin``, or ``stage=ar_twin`` with any experiment): the
autoregressive twin of a flow run, a reference row for its samples (docs/evaluation.md, "The AR twin"):
``ARTwinModule`` and its builder :func:`ar_twin_stage` (conf/stage/ar_twin.yaml).

The twin is a :class:`~textflow.baselines.CausalLM` with the width, depth, heads and MLP ratio of the
run's ``backbone`` config group and the vocabulary of its tokenizer, trained on the same data blocks
with the same optimizer and LR schedule (``module.optimizer``, ``module.scheduler``) and the same
trainer (steps, wall-clock cap). Each block (B, L) gets the tokenizer's end-of-text id prepended as a
BOS, so the twin predicts all L tokens of a block, as the flow models all L, and every one of its L
positions is trained; ``sample.py ar_twin=CKPT`` then samples L tokens from that BOS
(:meth:`CausalLM.sample`, ancestral, temperature 1) with the weights trained last (the twin keeps no
EMA copy). Logged: ``train/loss`` (next-token CE), ``val/loss`` (the CE over every validation token)
and ``val/ppl`` = exp(``val/loss``).

Its checkpoint's run info has ``kind: ar_twin`` and stores the ``backbone`` and ``data`` groups, the
optimizer and schedule (``module.optimizer``, ``module.scheduler``) and the model spec (``ar_twin``:
vocab_size, width, depth, heads, mlp_ratio, max_len, bos_id; plain data, no ``_target_``). A flow
reader (``sample.py ckpt_path=``, ``teacher_ckpt=``) refuses it in one line.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from textflow.baselines import CausalLM
from textflow.checks import require_int, require_number
from textflow.checkpoint import make_run_info
from textflow.errors import ConfigError
from textflow.training.base import StageKeys, TrainingModule, tokenizer_vocabulary


class ARTwinModule(TrainingModule):
    """Args:
    model: the causal LM to train.
    bos_id: the token id put before every block (the tokenizer's end-of-text id).
    optimizer: ``_partial_`` optimizer factory taking ``params``.
    scheduler: optional LR-schedule factory taking the optimizer (stepped per step).
    """

    def __init__(self, *, model: CausalLM, bos_id: int, optimizer: Callable,
                 scheduler: Optional[Callable] = None):
        super().__init__(optimizer=optimizer, scheduler=scheduler)
        self.model = model
        self.bos_id = int(bos_id)
        self._val_sums: Tensor | None = None  # (summed CE, tokens) of the running validation epoch

    def with_bos(self, ids: Tensor) -> Tensor:
        """``[bos_id, ids]`` per block: (B, L) -> (B, L + 1)."""
        return torch.cat([ids.new_full((ids.shape[0], 1), self.bos_id), ids], dim=1)

    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        loss = self.model.loss(self.with_bos(batch))
        self.log("train/loss", loss, on_step=True, on_epoch=False, batch_size=batch.shape[0])
        self.log("loss", loss, prog_bar=True, logger=False, batch_size=batch.shape[0])
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_sums = torch.zeros(2, dtype=torch.float64, device=self.device)

    @torch.no_grad()
    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        if self._val_sums is None:
            self.on_validation_epoch_start()
        ce = self.model.loss(self.with_bos(batch), reduction="sum")
        self._val_sums += torch.stack([ce.double(), ce.new_tensor(float(batch.numel()), dtype=torch.float64)])

    def on_validation_epoch_end(self) -> None:
        """``val/loss`` (CE per token over every rank's validation tokens) and ``val/ppl``."""
        if self._val_sums is None:
            return
        sums = self.all_gather(self._val_sums)
        sums = sums.reshape(-1, 2).sum(0)
        self._val_sums = None
        if float(sums[1]) == 0:
            return
        loss = float(sums[0] / sums[1])
        self.log_dict({"val/loss": loss, "val/ppl": math.exp(min(loss, 80.0))}, on_step=False, on_epoch=True,
                      prog_bar=True)


AR_TWIN = StageKeys("ar_twin", reads=("backbone", "module"), unread={
    "autoencoder": "the twin reads token ids; it has no latent space",
    "path": "the twin is autoregressive; it has no probability path",
    "autoencoder_ckpt": "only stage=flow reads it",
    "teacher_ckpt": "only stage=distill and stage=flow_map read it",
})


def twin_spec(backbone: DictConfig, *, vocab_size: int, seq_len: int) -> dict:
    """The causal LM's spec (:attr:`CausalLM.spec`) from the flow's ``backbone`` config: its width, depth,
    heads and MLP ratio, the tokenizer's vocabulary and one position per block token."""
    missing = [k for k in ("width", "depth", "heads", "mlp_ratio") if k not in backbone]
    if missing:
        raise ConfigError(f"stage=ar_twin takes its size from the backbone config, but backbone has no "
                          f"{', '.join(missing)}; choose backbone=dit_tiny, dit_small or dit_base")
    spec = {k: require_int(f"backbone.{k}", backbone[k], low=1) for k in ("width", "depth", "heads")}
    spec["mlp_ratio"] = require_number("backbone.mlp_ratio", backbone.mlp_ratio, low=0, low_open=True)
    if spec["width"] % spec["heads"]:
        raise ConfigError(f"backbone.width={spec['width']} is not a multiple of "
                          f"backbone.heads={spec['heads']}")
    return {"vocab_size": int(vocab_size), **spec, "max_len": int(seq_len)}


def ar_twin_stage(cfg: DictConfig, *, tokenizer, seq_len: int) -> ARTwinModule:
    """``stage=ar_twin``: the causal LM of the ``backbone`` group's size on ``cfg.data``, trained with
    ``module.optimizer`` and ``module.scheduler``."""
    AR_TWIN.refuse_unread_overrides(cfg)
    if tokenizer is None:
        raise ConfigError("stage=ar_twin needs text data (a tokenizer); this data has none "
                          "(data=digits is images)")
    tokenizer_json, vocab_size = tokenizer_vocabulary(tokenizer)
    spec = twin_spec(cfg.backbone, vocab_size=vocab_size, seq_len=require_int("data.seq_len", seq_len, low=1))
    bos_id = int(tokenizer.eos_id)
    optimizer = instantiate(cfg.module.optimizer)
    schedule_cfg = cfg.module.get("scheduler")
    scheduler = instantiate(schedule_cfg) if schedule_cfg is not None else None
    module = ARTwinModule(model=CausalLM(**spec), bos_id=bos_id, optimizer=optimizer, scheduler=scheduler)
    training = {k: OmegaConf.to_container(cfg.module[k], resolve=True) for k in ("optimizer", "scheduler")
                if cfg.module.get(k) is not None}
    extra = {"ar_twin": {**spec, "bos_id": bos_id}, "module": training}
    module.run_info = make_run_info(cfg, tokenizer_json=tokenizer_json, vocab_size=vocab_size,
                                    seq_len=seq_len, kind="ar_twin", extra=extra)
    return module
