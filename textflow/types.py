"""Shared types: the seams every component plugs into.

Conventions (docs/conventions.md, used everywhere in textflow):

* time ``t`` in [0, 1]; ``t = 0`` is pure noise, ``t = 1`` is data;
* latents have shape ``(B, L, D)``; token ids ``(B, L)``; ``t`` is ``(B,)`` (one time per sequence)
  or ``(B, L)`` (per-token time, used by committing samplers);
* networks predict whatever their path says; samplers only ever see the posterior mean
  ``x_hat = E[x | z_t]`` and a velocity, both provided by the path object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Protocol, runtime_checkable

from torch import Tensor


@dataclass(frozen=True)
class PathSample:
    """A point on the probability path: ``z = alpha(t) * x + sigma(t) * noise``."""

    x: Tensor  # clean latents (B, L, D)
    noise: Tensor  # standard normal draw, same shape as x
    t: Tensor  # (B,) or (B, L)
    z: Tensor  # noised latents


@dataclass
class StepRecord:
    """What a sampler reports to its ``callback`` after each network call.

    ``i`` is the step index, the network was evaluated at ``(z, t)`` and predicted ``x_hat``;
    the sampler then moves to ``t_next``. ``logits()`` decodes ``x_hat`` through the autoencoder's
    readout on demand (computed once, only when a consumer asks for it).
    """

    i: int
    t: Tensor
    t_next: Tensor
    z: Tensor
    x_hat: Tensor
    readout: Optional[Callable[[Tensor], Tensor]] = field(default=None, repr=False)
    extras: dict = field(default_factory=dict)
    _logits: Optional[Tensor] = field(default=None, repr=False)

    def logits(self) -> Tensor:
        if self._logits is None:
            if self.readout is None:
                raise RuntimeError("this sampler was run without a readout, so logits are unavailable")
            self._logits = self.readout(self.x_hat)
        return self._logits


@dataclass
class SampleOutput:
    """The result of one sampler call.

    ``latents`` is the final posterior-mean estimate (B, L, D) that the readout decodes;
    ``nfe`` counts network evaluations (read from the denoiser, not inferred from K);
    ``committed_step`` (B, L) is the step at which each position was committed, -1 where it never
    was (ode/sde return None); ``tokens`` (B, L) are token ids a committing sampler already decided
    (the readout of ``latents`` otherwise); ``extras`` holds a sampler's own run-level results (``adaptive``:
    ``injected_noise``), empty for most. Per-step records go to the sampler's ``callback``.
    """

    latents: Tensor
    nfe: int
    time_grid: Tensor
    committed_step: Optional[Tensor] = None
    tokens: Optional[Tensor] = None
    extras: dict = field(default_factory=dict)


@runtime_checkable
class Denoiser(Protocol):
    """The small model contract samplers are written against.

    ``denoiser(z, t)`` returns the posterior-mean estimate ``x_hat`` (B, L, D) and increments
    ``nfe``; ``denoiser.path`` converts ``x_hat`` to velocities and re-noises (churn);
    ``denoiser.readout(x)`` maps latents to token logits (B, L, V); ``denoiser.embed(ids)`` maps
    tokens to their clean latents.

    Samplers call ``denoiser(z, t)`` only. A self-conditioned model's denoiser
    (:class:`textflow.denoiser.FlowDenoiser` with ``self_conditioned`` true) also accepts
    ``denoiser(z, t, x_prev)``, a previous ``x_hat`` (None = zeros); ``textflow.samplers.Sampler`` wraps
    it in :class:`textflow.guidance.SelfConditioned`, which has the plain ``(z, t)`` signature and
    supplies ``x_prev`` itself (docs/samplers.md, "Self-conditioning and SC-CFG"). A conditional run's
    denoiser is a :class:`textflow.conditioning.Conditioned`, which also has ``condition`` (the batch's
    given positions); a sampler that holds positions itself (``commit``) reads it (docs/conditioning.md).
    """

    nfe: int
    path: "object"

    def __call__(self, z: Tensor, t: Tensor) -> Tensor: ...

    def readout(self, x: Tensor) -> Tensor: ...

    def embed(self, ids: Tensor) -> Tensor: ...


class DenoiserWrapper:
    """Base of the denoiser wrappers (``textflow.guidance.SelfConditioned``,
    ``textflow.conditioning.Conditioned``): ``nfe`` and every other attribute (``path``, ``readout``,
    ``embed``, ``autoencoder``, ...) are the wrapped ``self.denoiser``'s, so a wrapped denoiser still
    meets :class:`Denoiser` and wrappers nest."""

    denoiser: "object"

    @property
    def nfe(self) -> int:
        return self.denoiser.nfe

    @nfe.setter
    def nfe(self, value: int) -> None:
        self.denoiser.nfe = value

    def __getattr__(self, name: str):
        if name == "denoiser":  # not set yet (copy / unpickling): never recurse
            raise AttributeError(name)
        return getattr(self.denoiser, name)
