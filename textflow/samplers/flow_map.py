"""Flow-map student sampling (docs/samplers.md, "Flow-map students"; ``flow_map``).

A flow-map student (``train.py stage=flow_map teacher_ckpt=CKPT``) is one network ``X(z_s, s, t)`` that
jumps between any two times (:mod:`textflow.backbones.flow_map`), so one checkpoint serves every K and
every grid. The model's denoiser with the student as its backbone presents it through the one denoiser
protocol (:class:`textflow.denoiser.FlowDenoiser`, ``jumps``): called with the step's target time
(``denoiser(z, s, t_next=t)``, which :func:`textflow.samplers.steps.predict` does for any denoiser that
jumps) it returns the ``x_hat`` whose Euler step from ``s`` lands on ``X(z_s, s, t)``; without a target
it returns the diagonal ``t = s`` (the teacher-anchored velocity).

The sampler is ``sde``'s loop on that denoiser: ``gamma = 0`` chains K jumps on the grid; ``gamma > 0``
re-noises ``z`` to ``t_b = alpha t`` before each jump (ELF's churn, docs/samplers.md, ``sde``) and jumps
from ``t_b`` to the next grid time, so the ODE/SDE distinction applies between jumps. NFE = K.
"""

from __future__ import annotations

import copy

import torch

from textflow.backbones.flow_map import FlowMapNetwork
from textflow.checkpoint.folder import FLOW_MAP as FLOW_MAP_KEY  # the student's entry in the run info
from textflow.errors import CheckpointError, ConfigError
from textflow.samplers.registry import Weights, register_sampler, swap_in_backbone
from textflow.samplers.sde import check_sde, sample_sde
from textflow.types import SampleOutput

def flow_map_network(backbone, state: dict | None = None) -> FlowMapNetwork:
    """A flow map around a copy of ``backbone``, with the weights ``state`` when given."""
    network = FlowMapNetwork(backbone=copy.deepcopy(backbone))
    if state is not None:
        network.load_state_dict(state)
    return network


def flow_map_denoiser(loaded, *, steps: int, use_ema: bool = True):
    """The model's denoiser with the flow-map student stored in ``loaded`` (a
    :class:`textflow.checkpoint.LoadedRun`) as its backbone, for any K."""
    den = loaded.denoiser(use_ema=use_ema)
    state = loaded.info.get(FLOW_MAP_KEY)
    if not state:
        raise CheckpointError(f"{str(loaded.path)!r} holds no flow-map student; train one with "
                              f"`python train.py stage=flow_map teacher_ckpt={loaded.path}` and sample its "
                              f"checkpoints/flow_map.ckpt")
    return swap_in_backbone(den, flow_map_network(den.backbone), state, what="the flow-map student",
                            path=loaded.path)


FLOW_MAP = Weights("flow_map", flow_map_denoiser)


@register_sampler("flow_map", check=check_sde, weights=FLOW_MAP)
@torch.no_grad()
def sample_flow_map(denoiser, x_init, time_grid, *, generator=None, callback=None,
                    gamma: float = 0.0) -> SampleOutput:
    """K jumps of the flow map on ``time_grid`` (``gamma > 0``: churn before each jump)."""
    if getattr(denoiser, "condition", None) is not None:
        raise ConfigError("sampler=flow_map does not support prompts (prompt=, prompts_file=, "
                          "prompt_source=): flow-map students of conditional teachers are not built; use "
                          "sampler=student")
    if not getattr(denoiser, "jumps", False):
        raise ConfigError("sampler=flow_map needs a flow-map student's denoiser (train.py stage=flow_map)")
    return sample_sde(denoiser, x_init, time_grid, generator=generator, callback=callback, gamma=gamma)
