"""Stage ``distill`` (``train.py stage=distill teacher_ckpt=CKPT``): progressive distillation of a flow
into few-step students (Salimans & Ho 2022, "Progressive Distillation for Fast Sampling of Diffusion
Models", Alg. 2, on the flow paths of arXiv 2606.30705; docs/samplers.md, "Progressive distillation"):
``DistillModule`` and its builder :func:`distill_stage` (conf/stage/distill.yaml).

Round with a K-step student on the uniform grid ``t_i = i / K``: draw a clean latent ``x``, a step
``i``, ``z_s = path.sample(x, t_s)``; the teacher takes two Euler sub-steps ``t_s -> t_mid -> t_t``
(the one landing on ``t = 1`` returns the teacher's ``x_hat``, as every sampler's last step does) and
lands on ``z_t``. The student is regressed onto the ``x_hat*`` one Euler step would need to land on
the same point; on the linear path

    x_hat* = z_s + ((1 - t_s) / (t_t - t_s)) (z_t - z_s),

(``ProbPath.x_hat_for_velocity`` in general; on the last interval ``x_hat* = z_t``). Rounds halve K
(``start_steps / 2`` down to ``min_steps``); each round's student starts from the previous one, which
then becomes the teacher. After every round the students so far are exported into
``<run>/checkpoints/distilled.ckpt``: the original teacher's checkpoint plus ``students[K]``, so
``sample.py ckpt_path=.../distilled.ckpt sampler=student sampler.steps=K`` and the teacher's own
samplers work from one file.

A self-conditioned teacher (``backbone.self_condition=true``; docs/samplers.md, "Self-conditioning and
SC-CFG") is distilled with plain self-conditioning (w = 1) carried along one trajectory: the example's
``x_prev`` is zeros at the student's first step (``i = 0``, as at a sampler's first step) and otherwise
the teacher's unconditional ``x_hat`` at the previous grid time ``t_{i-1}`` on the same ``(x, eps)``
line, ``z_{i-1} = path.sample(x, t_{i-1}, eps)`` (one extra teacher call, no gradient). The teacher's
first sub-step and the student's step both read that ``x_prev`` (the same input, so the student
regresses onto what the teacher does from it); the teacher's second sub-step reads its first
sub-step's ``x_hat`` (:class:`textflow.guidance.SelfConditioned`, as every sampler does). The students
are therefore trained for ``sampler.sc_scale=1``; other scales run but were not distilled for.

A conditional teacher (``condition@module.condition=masks``; docs/conditioning.md) is distilled on its
own conditioning masks: each example draws its given positions (and condition dropout) as the teacher
was trained, teacher and student both run inside :class:`textflow.conditioning.Conditioned` (clean
given positions at per-token time 1), ``z_s`` holds the clean latents there, and the loss covers the
free positions only. The students then follow prompts as the teacher does (at ``cfg_scale=1``).

The student copies the teacher's architecture and keeps its frozen autoencoder and path, so the stage
reads the teacher checkpoint, ``data`` and its own ``stage.*`` keys only; overriding ``autoencoder``,
``backbone``, ``path``, ``module`` or ``autoencoder_ckpt`` on the command line is refused
(:class:`~textflow.training.base.StageKeys`).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable

import torch
from omegaconf import DictConfig
from torch import Tensor

from textflow.conditioning import Condition, Conditioned
from textflow.denoiser import FlowDenoiser
from textflow.errors import ConfigError
from textflow.guidance import SelfConditioned
from textflow.noise import stream_generator
from textflow.objectives import free_position_mse
from textflow.objectives.distillation import two_step_target
from textflow.paths import expand_time
from textflow.training.base import TrainingModule
from textflow.training.teacher import TeacherExport, load_teacher, student_stage_keys
from textflow.types import Latents, dense


def halving_rounds(start_steps: int, min_steps: int) -> list[int]:
    """Student step counts: start/2, start/4, ... down to min_steps (e.g. 32 -> [16, 8, 4, 2, 1])."""
    if start_steps < 2 or start_steps & (start_steps - 1):
        raise ConfigError(f"stage.start_steps={start_steps} is invalid; it must be a power of two >= 2")
    if min_steps < 1 or min_steps >= start_steps:
        raise ConfigError(f"stage.min_steps={min_steps} is invalid; it must lie in [1, start_steps)")
    rounds, k = [], start_steps // 2
    while k >= min_steps:
        rounds.append(k)
        k //= 2
    return rounds


class DistillModule(TrainingModule):
    """Args:
    teacher: the trained LatentFlowModule.
    teacher_ckpt: the teacher's checkpoint path (exported again with the students added).
    export_path: where ``distilled.ckpt`` is written after each round.
    start_steps, min_steps: teacher grid of the first round and the last student's K.
    steps_per_round: optimizer steps per round.
    optimizer: ``_partial_`` optimizer factory.
    use_ema: the first teacher (and the student's starting point and the frozen autoencoder) are the
        teacher's EMA weights, what ``sample.py`` samples by default (True), or its raw training
        weights (False), as ``sample.py use_ema=false``.
    """

    def __init__(self, *, teacher, teacher_ckpt: str, export_path: str, start_steps: int = 32, min_steps: int = 1,
                 steps_per_round: int = 500, optimizer: Callable, use_ema: bool = True):
        super().__init__(optimizer=optimizer)
        self.rounds = halving_rounds(int(start_steps), int(min_steps))
        self.steps_per_round = int(steps_per_round)
        self.teacher_ckpt, self.export_path = str(teacher_ckpt), str(export_path)
        self.exporter = TeacherExport(teacher_ckpt=self.teacher_ckpt, export_path=self.export_path)
        self.use_ema = bool(use_ema)
        nets = teacher.ema.module if self.use_ema else teacher.net
        self.autoencoder = copy.deepcopy(nets["autoencoder"]).requires_grad_(False).eval()
        self.teacher_backbone = copy.deepcopy(nets["backbone"]).requires_grad_(False).eval()
        self.student = copy.deepcopy(nets["backbone"]).requires_grad_(True)
        self.path = teacher.path
        self.self_conditioned = bool(getattr(self.teacher_backbone, "self_condition", False))
        self.condition = getattr(teacher, "condition", None)  # the teacher's ConditionMasks, or None
        self.register_buffer("round_index", torch.zeros((), dtype=torch.long))
        self.students: dict[int, dict] = {}
        self.run_info = {**teacher.run_info, "kind": "distill-state"}

    def trained_parameters(self) -> list:
        """The student's parameters (the teacher and the autoencoder stay frozen)."""
        return list(self.student.parameters())

    @property
    def student_steps(self) -> int:
        return self.rounds[min(int(self.round_index), len(self.rounds) - 1)]

    def denoiser(self, *, use_ema: bool = True) -> FlowDenoiser:
        """The student being trained (what the training callbacks sample and diagnose). The student has
        no EMA copy (each round exports the raw student, Salimans & Ho 2022, Alg. 2), so ``use_ema``, the
        callbacks' keyword, selects nothing here; the stage's ``use_ema`` chooses the teacher's weights."""
        return FlowDenoiser(backbone=self.student, path=self.path, autoencoder=self.autoencoder)

    def _loss(self, ids: Tensor, generator=None) -> Tensor:
        k = self.student_steps
        x = self.autoencoder.flow_latents(ids)  # one-hot latents as their ids (types.OneHotLatents)
        i = torch.randint(0, k, (ids.shape[0],), device=ids.device, generator=generator)
        t_s, t_t = i.float() / k, (i.float() + 1) / k
        noise = torch.randn(x.shape, device=x.device, generator=generator)
        z_s = self.path.sample(x, t_s, noise).z
        teacher = FlowDenoiser(backbone=self.teacher_backbone, path=self.path, autoencoder=self.autoencoder)
        student, given = self.denoiser(), None
        if self.condition is not None:  # the teacher's masks: given positions clean, left out of the loss
            given, dropped = self.condition.sample(*ids.shape, device=ids.device, generator=generator)
            clean = dense(x).masked_fill((given & dropped.unsqueeze(1)).unsqueeze(-1), 0.0)
            condition = Condition(mask=given, ids=ids, latents=clean)
            teacher, student = Conditioned(teacher, condition), Conditioned(student, condition)
            z_s = condition.restore(z_s)
        if not self.self_conditioned:
            target = two_step_target(teacher, z_s, t_s, t_t)
            return free_position_mse(student(z_s, t_s), target, given)
        x_prev = self.previous_estimate(teacher, x, noise, i, k)
        target = two_step_target(SelfConditioned(teacher, scale=1.0, x_prev=x_prev), z_s, t_s, t_t)
        return free_position_mse(student(z_s, t_s, x_prev), target, given)

    @torch.no_grad()
    def previous_estimate(self, teacher, x: Latents, noise: Tensor, i: Tensor, k: int) -> Tensor | None:
        """Self-conditioned teachers: the ``x_prev`` of student step ``i`` (module docstring), zeros
        where ``i = 0``; None (zeros everywhere, no teacher call) when every example is at step 0."""
        first = i == 0
        if bool(first.all()):
            return None
        t_p = (i - 1).clamp_min(0).float() / k
        z_p = self.path.sample(x, t_p, noise).z
        x_p = teacher(z_p, t_p)  # a Conditioned teacher restores the given positions itself
        return torch.where(expand_time(first, x_p), torch.zeros_like(x_p), x_p)

    def training_step(self, ids: Tensor, batch_idx: int) -> Tensor:
        loss = self._loss(ids)
        self.log_dict({"train/distill_loss": loss, "train/student_steps": float(self.student_steps)},
                      on_step=True, on_epoch=False, batch_size=ids.shape[0])
        self.log("loss", loss, prog_bar=True, logger=False, batch_size=ids.shape[0])
        return loss

    def on_train_start(self) -> None:
        """A run resumed after its last round has nothing left to train (it would retrain and overwrite
        the last student)."""
        if int(self.round_index) >= len(self.rounds):
            self.trainer.should_stop = True

    def optimizer_step(self, *args, **kwargs) -> None:
        """The optimizer step, then (every ``steps_per_round`` steps) the end of the round, before any
        callback's ``on_train_batch_end``, where ``ModelCheckpoint`` writes: a checkpoint taken at a
        round's last step already holds the next round's state, so a run resumed from it goes on with
        the next round instead of repeating this one."""
        super().optimizer_step(*args, **kwargs)
        steps_done = self.global_step + 1  # Lightning counts the step after this hook returns
        if steps_done % self.steps_per_round == 0:
            self.finish_round()

    @torch.no_grad()
    def validation_step(self, ids: Tensor, batch_idx: int) -> None:
        g = stream_generator(batch_idx, "validation", device=ids.device)
        self.log("val/distill_loss", self._loss(ids, generator=g), on_epoch=True, sync_dist=True,
                 batch_size=ids.shape[0])

    def finish_round(self) -> None:
        """Keep this round's student, export, and make it the next round's teacher."""
        k = self.student_steps
        self.students[k] = {n: p.detach().cpu().clone() for n, p in self.student.state_dict().items()}
        if self.trainer.is_global_zero:
            self.export()
        self.teacher_backbone.load_state_dict(self.student.state_dict())
        self.round_index += 1
        if int(self.round_index) >= len(self.rounds):
            self.trainer.should_stop = True

    def export(self) -> Path:
        students = {str(k): sd for k, sd in sorted(self.students.items())}
        record = {"teacher_ckpt": self.teacher_ckpt, "rounds": self.rounds, "steps_per_round": self.steps_per_round,
                  "grid": "uniform", "teacher_ema": self.use_ema}
        return self.exporter.write(students=students, distill=record)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["distill_students"] = {str(k): sd for k, sd in self.students.items()}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        self.students = {int(k): sd for k, sd in checkpoint.get("distill_students", {}).items()}


DISTILL = student_stage_keys("distill")


def distill_stage(cfg: DictConfig, *, tokenizer, seq_len: int, teacher_ckpt: str, start_steps: int = 32,
                  min_steps: int = 1, steps_per_round: int = 500, optimizer: Callable,
                  use_ema: bool = True) -> DistillModule:
    """``stage=distill``: progressive distillation of the flow in ``teacher_ckpt``, which must have been
    trained on this run's vocabulary and block length."""
    loaded = load_teacher(cfg, DISTILL, teacher_ckpt=teacher_ckpt, tokenizer=tokenizer, seq_len=seq_len)
    export = Path(cfg.dirs.output_dir) / "checkpoints" / "distilled.ckpt"
    return DistillModule(teacher=loaded.module, teacher_ckpt=str(teacher_ckpt), export_path=str(export),
                         start_steps=start_steps, min_steps=min_steps, steps_per_round=steps_per_round,
                         optimizer=optimizer, use_ema=use_ema)
