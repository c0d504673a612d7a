"""``Sampler``: a registered sampler function with its step count, time grid and knobs bound.

This is what ``conf/sampler/<name>.yaml`` instantiates, so ``sampler=sde sampler.gamma=1.5
sampler.steps=4`` on the command line maps one-to-one onto keyword arguments. Bad values fail here,
before any checkpoint is loaded, with a one-line :class:`textflow.errors.ConfigError`.

Self-conditioning (docs/samplers.md, "Self-conditioning and SC-CFG") is the ``Sampler``'s, not the
sampler function's: ``sc_scale`` (SC-CFG scale ``w``, 1 = plain self-conditioning) is consumed here,
and every call on a self-conditioned denoiser wraps it in a fresh
:class:`textflow.guidance.SelfConditioned`, so every registered sampler gets it unchanged.

Conditioning is the ``Sampler``'s too (docs/conditioning.md): a call with ``condition=`` wraps the
denoiser in :class:`textflow.conditioning.Conditioned` (clean given positions at every call, CFG with
``cfg_scale``), starts from the clean latents there and restores them, and the given token ids, in the
output. A sampler that holds positions itself (``commit``) reads ``denoiser.condition``.
"""

from __future__ import annotations

import inspect
from dataclasses import replace
from typing import Callable, Optional

from torch import Tensor

from textflow.checks import require_number
from textflow.conditioning import Condition, Conditioned
from textflow.errors import ConfigError
from textflow.guidance import SelfConditioned
from textflow.noise import GeneratorArg
from textflow.samplers.registry import check_knobs, get_sampler
from textflow.time.grids import UniformTime, check_steps, fit_time
from textflow.types import SampleOutput

_FIXED = {"denoiser", "x_init", "time_grid", "generator", "callback"}


class Sampler:
    """Args:
    name: registry name (== conf/sampler file stem).
    steps: K, the number of solver steps (>= 1).
    time: a time distribution whose ``grid(K)`` gives the K + 1 times (uniform by default).
    sc_scale: SC-CFG scale ``w`` for a self-conditioned model (finite, >= 0): 1 = plain
        self-conditioning (one call per network evaluation), 0 = the unconditional call only, any other
        value two calls (NFE doubles). A model without self-conditioning accepts only 1.
    cfg_scale: classifier-free guidance scale on a condition (finite, >= 0; 1 = none, one call; else two
        calls per network evaluation); only meaningful with ``condition=``.
    **knobs: the sampler's own keyword arguments (e.g. ``gamma`` for ``sde``).
    """

    def __init__(self, *, name: str, steps: int = 32, time=None, sc_scale: float = 1.0, cfg_scale: float = 1.0,
                 **knobs):
        self.fn = get_sampler(name)
        self.name = name
        self.steps = check_steps(steps)
        self.time = time if time is not None else UniformTime()
        allowed = [p for p in inspect.signature(self.fn).parameters if p not in _FIXED]
        unknown = sorted(set(knobs) - set(allowed))
        if unknown:
            raise ConfigError(f"sampler {name!r} has no knob {unknown[0]!r}; its knobs are: "
                              f"{', '.join(allowed) or '(none)'}, plus steps, time, sc_scale and cfg_scale")
        check_knobs(name, knobs)
        self.knobs = dict(knobs)
        self.sc_scale = require_number("sampler.sc_scale", sc_scale, low=0,
                                       hint=" (1 = plain self-conditioning, 0 = unconditional)")
        self.cfg_scale = require_number("sampler.cfg_scale", cfg_scale, low=0, hint=" (1 = no guidance)")

    @property
    def weights(self) -> str:
        """The name of the network this sampler runs: ``"model"`` or ``"student"`` (``register_sampler``)."""
        return self.fn.weights.name

    def denoiser(self, loaded, *, use_ema: bool = True):
        """The denoiser to sample with from a loaded checkpoint (:class:`textflow.checkpoint.LoadedRun`):
        the sampler's weights provider resolves it for this K (the trained flow, or the student distilled
        for K, which it refuses in one line when the checkpoint has none). The time grid is fitted to the
        model here (:func:`textflow.time.fit_time`: ``time=flm`` reads the one-hot latent space)."""
        denoiser = self.fn.weights.denoiser(loaded, steps=self.steps, use_ema=use_ema)
        self.check_denoiser(denoiser)
        self.fit_time_to(denoiser)
        return denoiser

    def fit_time_to(self, denoiser) -> None:
        """Fit the time grid to ``denoiser``'s latent space (only a grid that describes it, ``time=flm``,
        reads it; the training callbacks' samplers meet their model only at the call)."""
        if getattr(self.time, "fit", None) is not None:
            self.time = fit_time(self.time, autoencoder=denoiser.autoencoder, path=denoiser.path)

    def check_denoiser(self, denoiser) -> None:
        """Refuse, in one line, ``sc_scale != 1`` on a model trained without self-conditioning, and a scale
        outside the range a scale-token model was trained on."""
        if self.sc_scale != 1.0 and not getattr(denoiser, "self_conditioned", False):
            raise ConfigError(f"sampler.sc_scale={self.sc_scale:g} needs a model trained with self-conditioning "
                              f"(module.self_cond_prob > 0)")
        trained = getattr(denoiser, "scale_range", None)
        if trained is not None and not trained[0] <= self.sc_scale <= trained[1]:
            raise ConfigError(f"sampler.sc_scale={self.sc_scale:g} is outside [{trained[0]:g}, {trained[1]:g}], the "
                              f"scales this model's scale tokens were trained on")

    def guided(self, denoiser):
        """What the sampler function runs: a fresh :class:`~textflow.guidance.SelfConditioned` around a
        self-conditioned denoiser (one per call: the memory is per batch), else the denoiser itself."""
        self.check_denoiser(denoiser)
        if isinstance(denoiser, SelfConditioned) or not getattr(denoiser, "self_conditioned", False):
            return denoiser
        return SelfConditioned(denoiser, scale=self.sc_scale)

    def time_grid(self) -> Tensor:
        return self.time.grid(self.steps)

    def __call__(self, denoiser, x_init: Tensor, *, generator: GeneratorArg = None,
                 callback: Optional[Callable] = None, condition: Optional[Condition] = None) -> SampleOutput:
        self.fit_time_to(denoiser)
        grid = self.time_grid().to(x_init.device)
        if condition is None:
            if self.cfg_scale != 1.0:
                raise ConfigError(f"sampler.cfg_scale={self.cfg_scale:g} needs a condition (prompt=, prompts_file= or "
                                  f"prompt_source=heldout); unconditional sampling has nothing to guide on")
            return self.fn(self.guided(denoiser), x_init, grid, generator=generator, callback=callback, **self.knobs)
        conditioned = Conditioned(denoiser, condition, cfg_scale=self.cfg_scale)
        out = self.fn(self.guided(conditioned), condition.restore(x_init), grid, generator=generator,
                      callback=callback, **self.knobs)
        tokens = None if out.tokens is None else condition.restore_tokens(out.tokens)
        return replace(out, latents=condition.restore(out.latents), tokens=tokens)

    def with_steps(self, steps: int) -> "Sampler":
        """The same sampler with another K (per-K validation, sweeps in code)."""
        return Sampler(name=self.name, steps=steps, time=self.time, sc_scale=self.sc_scale, cfg_scale=self.cfg_scale,
                       **self.knobs)

    def without_cfg(self) -> "Sampler":
        """The same sampler with ``cfg_scale`` 1 (an unconditional run of a conditional configuration)."""
        return Sampler(name=self.name, steps=self.steps, time=self.time, sc_scale=self.sc_scale, **self.knobs)

    def _guidance(self) -> dict:
        scales = {"sc_scale": self.sc_scale, "cfg_scale": self.cfg_scale}
        return {key: value for key, value in scales.items() if value != 1.0}

    def resolved_knobs(self) -> dict:
        """Every knob the sampler function runs with: the given ones over its signature's defaults."""
        defaults = {name: p.default for name, p in inspect.signature(self.fn).parameters.items()
                    if name not in _FIXED and p.default is not inspect.Parameter.empty}
        return {**defaults, **self.knobs}

    def describe(self) -> dict:
        """Settings recorded next to every sample (samples.jsonl, metrics.json): every knob, defaults included,
        so a record rebuilds the sampler it ran even after a default changes
        (:func:`textflow.samplers.spec.recorded_knobs`); ``sc_scale`` and ``cfg_scale`` only when not 1."""
        return {"name": self.name, "steps": self.steps, "time": type(self.time).__name__, **self.resolved_knobs(),
                **self._guidance()}

    @property
    def label(self) -> str:
        """Short run label, e.g. ``sde_gamma1.5_K4`` or ``sde_gamma1.5_sc_scale3.0_K4`` (used in metric keys
        and plot legends)."""
        knob = "".join(f"_{k}{v}" for k, v in sorted({**self.knobs, **self._guidance()}.items()))
        return f"{self.name}{knob}_K{self.steps}"

    def __repr__(self) -> str:
        return f"Sampler({self.describe()})"
