"""The sampler registry: registry name == ``conf/sampler/<name>.yaml`` stem (a test checks both ways).

Every registered sampler has the one signature (docs/adding_a_sampler.md)::

    sample_<name>(denoiser, x_init, time_grid, *, generator=None, callback=None, **knobs) -> SampleOutput

``denoiser`` follows :class:`textflow.types.Denoiser`; ``time_grid`` is a 1-D tensor from 0 (noise)
to 1 (data); ``generator`` is a ``torch.Generator`` or a list with one per sample; ``callback``
receives a :class:`textflow.types.StepRecord` after every network call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from textflow.errors import ConfigError

SAMPLERS: dict[str, Callable] = {}
_CHECKS: dict[str, Callable[..., None]] = {}


@dataclass(frozen=True)
class Weights:
    """Which network a sampler runs, and how it gets it from a loaded checkpoint.

    ``denoiser(loaded, *, steps, use_ema)`` returns the denoiser to sample with from a
    :class:`textflow.checkpoint.LoadedRun` (``steps`` = the sampler's K); a bad request (no such
    network in the checkpoint) raises a one-line :class:`textflow.errors.TextflowError`.
    """

    name: str
    denoiser: Callable


def swap_in_backbone(den, network, state: dict, *, what: str, path) -> object:
    """``den`` with ``network`` (loaded with ``state``, on the model's device) as its backbone: how a
    weights provider runs a student on the model's denoiser. A state that does not fit is refused in one
    line naming ``what`` (e.g. ``the K=4 student``) and the checkpoint ``path``."""
    from textflow.errors import CheckpointError

    try:
        network.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(f"{what} in {str(path)!r} does not match the model's backbone: "
                              f"{' '.join(str(err).split())[:160]}") from None
    den.backbone = network.to(next(den.backbone.parameters()).device)
    return den


def _model_denoiser(loaded, *, steps: int, use_ema: bool):
    return loaded.denoiser(use_ema=use_ema)


MODEL = Weights("model", _model_denoiser)  # the trained flow itself


def register_sampler(name: str, *, check: Optional[Callable[..., None]] = None, weights: Weights = MODEL):
    """Register ``fn`` under ``name``; ``check(**knobs)`` validates knob values up front.

    ``weights`` provides the network the sampler runs: :data:`MODEL` (the trained flow) by default; the
    ``student`` sampler's provider swaps in the student distilled for its K (:mod:`textflow.samplers.student`).
    """

    def deco(fn: Callable) -> Callable:
        if name in SAMPLERS:
            raise ValueError(f"sampler {name!r} is registered twice")
        SAMPLERS[name] = fn
        if check is not None:
            _CHECKS[name] = check
        fn.weights = weights
        return fn

    return deco


def get_sampler(name: str) -> Callable:
    if name not in SAMPLERS:
        raise ConfigError(f"sampler={name!r} is not a registered sampler; choose one of: {', '.join(sorted(SAMPLERS))}")
    return SAMPLERS[name]


def check_knobs(name: str, knobs: dict) -> None:
    if name in _CHECKS:
        _CHECKS[name](**knobs)
