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
from typing import Callable, Optional, Protocol, Union, runtime_checkable

import torch
from torch import Tensor


@dataclass(frozen=True)
class OneHotLatents:
    """Clean one-hot latents ``scale * one_hot(ids)`` (B, L, V) held as their token ids (docs/autoencoders.md,
    "The one-hot latent space"). The flow objective never needs them dense: the path adds ``alpha(t) * scale``
    at each token's coordinate of ``std(t) * noise``, and the cross-entropy reads the ids. That keeps two
    (B, L, V) float tensors out of a training step (the latents and the path's signal term), and one pass
    over them out of the loss (docs/benchmarks.md, "Large vocabularies")."""

    ids: Tensor  # (B, L) token ids
    scale: float
    vocab_size: int

    @property
    def shape(self) -> torch.Size:
        return torch.Size((*self.ids.shape, self.vocab_size))

    @property
    def device(self) -> torch.device:
        return self.ids.device

    @property
    def dtype(self) -> torch.dtype:
        return torch.get_default_dtype()

    def detach(self) -> "OneHotLatents":
        return self  # integer ids carry no graph

    def dense(self) -> Tensor:
        """The (B, L, V) latents, for the consumers that need every coordinate (conditioning positions,
        the dense loss): written straight into one float tensor (``F.one_hot`` would first build an int64
        copy)."""
        out = torch.zeros(self.shape, dtype=self.dtype, device=self.device)
        return out.scatter_(-1, self.ids.unsqueeze(-1), self.scale)

    def add_scaled_(self, z: Tensor, coef: Tensor) -> Tensor:
        """``z += coef * latents`` in place, touching only the tokens' coordinates; ``coef`` broadcasts
        against (B, L, 1). The same floats as the dense sum: elsewhere it adds ``coef * 0``."""
        value = (coef * self.scale).to(z.dtype).expand(*self.ids.shape, 1)
        return z.scatter_add_(-1, self.ids.unsqueeze(-1), value)


Latents = Union[Tensor, OneHotLatents]


def dense(latents: Latents) -> Tensor:
    """``latents`` as a tensor: :meth:`OneHotLatents.dense` for the one-hot kind, the tensor itself
    otherwise."""
    return latents.dense() if isinstance(latents, OneHotLatents) else latents


@dataclass(frozen=True)
class PathSample:
    """A point on the probability path: ``z = alpha(t) * x + sigma(t) * noise``."""

    x: Latents  # clean latents (B, L, D); one-hot latents may be held as their ids
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
