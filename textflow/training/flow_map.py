"""Stage ``flow_map`` (``train.py stage=flow_map teacher_ckpt=CKPT``): distil a flow into a flow-map
student, one network that jumps between any two times, so one checkpoint serves every K and every grid
(docs/samplers.md, "Flow-map students"): ``FlowMapModule`` and its builder :func:`flow_map_stage`
(conf/stage/flow_map.yaml).

The student starts as the teacher (:class:`textflow.backbones.flow_map.FlowMapNetwork` adds the target
time through a zero-initialised embedding) and trains on :func:`textflow.objectives.flow_map.flow_map_loss`
for ``trainer.max_steps`` steps with ``stage.optimizer``. Every ``export_every`` steps and at the end it
writes ``<run>/checkpoints/flow_map.ckpt``: the teacher's checkpoint with the student under
``textflow["flow_map"]`` (a ``distilled.ckpt`` as teacher keeps its progressive students too, so one file
serves ``sampler=ode|sde|student|flow_map``). Sample it with ``sampler=flow_map sampler.steps=K``.

The teacher must be a plain flow: self-conditioned teachers and conditional ones (prompts) are refused
in one line (a flow map of them would carry ``x_prev`` and the given positions between jumps, which is
not built); ``stage=distill`` distils those.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable

import torch
from omegaconf import DictConfig
from torch import Tensor

from textflow.denoiser import FlowDenoiser
from textflow.checks import require_int
from textflow.errors import ConfigError
from textflow.noise import stream_generator
from textflow.objectives.flow_map import check_flow_map_knobs, flow_map_loss
from textflow.samplers.flow_map import FLOW_MAP_KEY, flow_map_network
from textflow.training.base import TrainingModule
from textflow.training.teacher import TeacherExport, load_teacher, student_stage_keys


class FlowMapModule(TrainingModule):
    """Args:
    teacher: the trained LatentFlowModule.
    teacher_ckpt: the teacher's checkpoint path (exported again with the student added).
    export_path: where ``flow_map.ckpt`` is written.
    levels: dyadic levels trained directly: intervals of ``1, 1/2, ..., 2^-levels`` (the finest is matched
        to two teacher Euler steps).
    anchor_fraction: share of diagonal rows (``t = s``, the teacher's ``x_hat``).
    export_every: write ``flow_map.ckpt`` every so many optimizer steps (and at the end of training).
    optimizer: ``_partial_`` optimizer factory.
    use_ema: distil the teacher's EMA weights (what ``sample.py`` samples by default) or its raw weights.
    """

    def __init__(self, *, teacher, teacher_ckpt: str, export_path: str, levels: int = 5,
                 anchor_fraction: float = 0.25, export_every: int = 250, optimizer: Callable,
                 use_ema: bool = True):
        super().__init__(optimizer=optimizer)
        self.levels, self.anchor_fraction = check_flow_map_knobs(levels=levels, anchor_fraction=anchor_fraction)
        self.export_every = int(export_every)
        self.teacher_ckpt, self.export_path = str(teacher_ckpt), str(export_path)
        self.exporter = TeacherExport(teacher_ckpt=self.teacher_ckpt, export_path=self.export_path)
        self.use_ema = bool(use_ema)
        if getattr(teacher, "condition", None) is not None:
            raise ConfigError("stage=flow_map does not distil a conditional teacher (condition@module.condition=masks); "
                              "use stage=distill")
        nets = teacher.ema.module if self.use_ema else teacher.net
        self.autoencoder = copy.deepcopy(nets["autoencoder"]).requires_grad_(False).eval()
        self.teacher_backbone = copy.deepcopy(nets["backbone"]).requires_grad_(False).eval()
        self.student = flow_map_network(nets["backbone"]).requires_grad_(True)
        self.path = teacher.path
        self.run_info = {**teacher.run_info, "kind": "flow-map-state"}

    def trained_parameters(self) -> list:
        return list(self.student.parameters())

    def denoiser(self, *, use_ema: bool = True) -> FlowDenoiser:
        """The student being trained (sampled and diagnosed by the training callbacks through the one
        denoiser protocol; it has no EMA copy, so ``use_ema`` selects nothing)."""
        return FlowDenoiser(backbone=self.student, path=self.path, autoencoder=self.autoencoder)

    def teacher(self) -> FlowDenoiser:
        return FlowDenoiser(backbone=self.teacher_backbone, path=self.path, autoencoder=self.autoencoder)

    def _loss(self, ids: Tensor, generator=None) -> Tensor:
        x = self.autoencoder.flow_latents(ids)  # one-hot latents as their ids (types.OneHotLatents)
        noise = torch.randn(x.shape, device=x.device, generator=generator)
        return flow_map_loss(self.denoiser(), self.teacher(), x=x, noise=noise, levels=self.levels,
                             anchor_fraction=self.anchor_fraction, generator=generator)

    def training_step(self, ids: Tensor, batch_idx: int) -> Tensor:
        loss = self._loss(ids)
        self.log("train/flow_map_loss", loss, on_step=True, on_epoch=False, batch_size=ids.shape[0])
        self.log("loss", loss, prog_bar=True, logger=False, batch_size=ids.shape[0])
        return loss

    @torch.no_grad()
    def validation_step(self, ids: Tensor, batch_idx: int) -> None:
        g = stream_generator(batch_idx, "validation")
        self.log("val/flow_map_loss", self._loss(ids, generator=g), on_epoch=True, sync_dist=True,
                 batch_size=ids.shape[0])

    def optimizer_step(self, *args, **kwargs) -> None:
        """The optimizer step, then an export every ``export_every`` steps (before ``ModelCheckpoint``
        writes, so a resumed run's last export matches its state)."""
        super().optimizer_step(*args, **kwargs)
        if (self.global_step + 1) % self.export_every == 0 and self.trainer.is_global_zero:
            self.export()

    def on_train_end(self) -> None:
        if self.trainer.is_global_zero:
            self.export()

    def export(self) -> Path:
        state = {n: p.detach().cpu().clone() for n, p in self.student.state_dict().items()}
        record = {"teacher_ckpt": self.teacher_ckpt, "levels": self.levels, "anchor_fraction": self.anchor_fraction,
                  "steps": int(self.global_step) + 1, "teacher_ema": self.use_ema}
        return self.exporter.write(**{FLOW_MAP_KEY: state, "flow_map_training": record})


FLOW_MAP_STAGE = student_stage_keys("flow_map")


def flow_map_stage(cfg: DictConfig, *, tokenizer, seq_len: int, teacher_ckpt: str, levels: int = 5,
                   anchor_fraction: float = 0.25, export_every: int = 250, optimizer: Callable,
                   use_ema: bool = True) -> FlowMapModule:
    """``stage=flow_map``: a flow-map student of the flow in ``teacher_ckpt``, which must have been
    trained on this run's vocabulary and block length."""
    if not teacher_ckpt:
        raise ConfigError("stage=flow_map needs teacher_ckpt=CKPT (a flow checkpoint, e.g. the quickstart's "
                          "final.ckpt or a distilled.ckpt)")
    export_every = require_int("stage.export_every", export_every, low=1)
    loaded = load_teacher(cfg, FLOW_MAP_STAGE, teacher_ckpt=teacher_ckpt, tokenizer=tokenizer, seq_len=seq_len)
    export = Path(cfg.dirs.output_dir) / "checkpoints" / "flow_map.ckpt"
    return FlowMapModule(teacher=loaded.module, teacher_ckpt=str(teacher_ckpt), export_path=str(export),
                         levels=levels, anchor_fraction=anchor_fraction, export_every=export_every,
                         optimizer=optimizer, use_ema=use_ema)
