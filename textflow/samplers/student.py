"""Distilled few-step student (docs/samplers.md, "Progressive distillation"; ``student``).

The sampler runs K Euler steps (``gamma = 0``) or churned SDE steps (``gamma > 0``, ELF semantics) of
the *student* network distilled for exactly K steps on the uniform grid (``textflow.training.distill``).
It resolves its own weights: :data:`STUDENT` builds the model's denoiser and swaps in the student's
backbone for the sampler's K, and refuses, in one line, a K for which no student was distilled. NFE = K.
"""

from __future__ import annotations

import copy

import torch

from textflow.errors import CheckpointError
from textflow.samplers.registry import Weights, register_sampler, swap_in_backbone
from textflow.samplers.sde import check_sde, sample_sde
from textflow.types import SampleOutput


def distilled_steps(loaded) -> list[int]:
    """The K for which ``loaded`` (a :class:`textflow.checkpoint.LoadedRun`) carries a student."""
    return sorted(int(k) for k in loaded.info.get("students", {}))


def student_denoiser(loaded, *, steps: int, use_ema: bool = True):
    """The model's denoiser with the backbone of the student distilled for ``steps``."""
    den = loaded.denoiser(use_ema=use_ema)
    if steps not in distilled_steps(loaded):
        have = ", ".join(map(str, distilled_steps(loaded))) or "none (run train.py stage=distill teacher_ckpt=...)"
        raise CheckpointError(f"no student was distilled for sampler.steps={steps} in "
                              f"{str(loaded.path)!r}; students exist for steps: {have}")
    return swap_in_backbone(den, copy.deepcopy(den.backbone), loaded.info["students"][str(steps)],
                            what=f"the K={steps} student", path=loaded.path)


STUDENT = Weights("student", student_denoiser)


@register_sampler("student", check=check_sde, weights=STUDENT)
@torch.no_grad()
def sample_student(denoiser, x_init, time_grid, *, generator=None, callback=None, gamma: float = 0.0) -> SampleOutput:
    """The ``sde`` update (``gamma = 0``: Euler) run on the student's denoiser."""
    return sample_sde(denoiser, x_init, time_grid, generator=generator, callback=callback, gamma=gamma)
