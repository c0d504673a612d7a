"""Distilled few-step student (science.md §3, ``student``).

The sampler runs K Euler steps (``gamma = 0``) or churned SDE steps (``gamma > 0``, ELF semantics) of
the *student* network distilled for exactly K steps on the uniform grid (``textflow.training.distill``):
sample.py hands it the student's denoiser (``register_sampler(..., weights="student")``) and refuses
a K for which no student was distilled. NFE = K.
"""

from __future__ import annotations

import torch

from textflow.samplers.registry import register_sampler
from textflow.samplers.sde import check_sde, sample_sde
from textflow.types import SampleOutput


@register_sampler("student", check=check_sde, weights="student")
@torch.no_grad()
def sample_student(denoiser, x_init, time_grid, *, generator=None, callback=None, gamma: float = 0.0) -> SampleOutput:
    """The ``sde`` update (``gamma = 0``: Euler) run on the student's denoiser."""
    return sample_sde(denoiser, x_init, time_grid, generator=generator, callback=callback, gamma=gamma)
