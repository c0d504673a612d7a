"""The sampler registry: registry name == ``conf/sampler/<name>.yaml`` stem (a test checks both ways).

Every registered sampler has the one signature of style.md convention 2::

    sample_<name>(denoiser, x_init, time_grid, *, generator=None, callback=None, **knobs) -> SampleOutput

``denoiser`` follows :class:`textflow.types.Denoiser`; ``time_grid`` is a 1-D tensor from 0 (noise)
to 1 (data); ``generator`` is a ``torch.Generator`` or a list with one per sample; ``callback``
receives a :class:`textflow.types.StepRecord` after every network call.
"""

from __future__ import annotations

from typing import Callable, Optional

from textflow.errors import ConfigError

SAMPLERS: dict[str, Callable] = {}
_CHECKS: dict[str, Callable[..., None]] = {}


def register_sampler(name: str, *, check: Optional[Callable[..., None]] = None, weights: str = "model"):
    """Register ``fn`` under ``name``; ``check(**knobs)`` validates knob values up front.

    ``weights`` says which network the sampler runs: ``"model"`` (the trained flow) or ``"student"``
    (the distilled student for the sampler's K, loaded by sample.py from the checkpoint).
    """

    def deco(fn: Callable) -> Callable:
        if name in SAMPLERS:
            raise ValueError(f"sampler {name!r} is registered twice")
        SAMPLERS[name] = fn
        if check is not None:
            _CHECKS[name] = check
        fn.sampler_name = name
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
