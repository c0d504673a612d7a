"""Probability paths: how clean latents are noised, and how network outputs become ``x_hat``.

Conventions of docs/conventions.md: ``t = 0`` is noise, ``t = 1`` is data, ``z_t = alpha(t) x + std(t) eps``.
Parameterisation conversions live here (the flow_matching ``AffineProbPath`` idea), so samplers see
only the posterior mean ``x_hat = E[x | z_t]`` and a velocity ``dz/dt`` whatever the network predicts.

* :class:`LinearPath` – the rectified-flow / ELF path ``z_t = t x + (1 - t) sigma eps`` with
  x-prediction; velocity ``v = (x_hat - z) / (1 - t)`` (1 - t clamped at ``t_eps``).
* :class:`VPPath` – a variance-preserving diffusion path with the cosine schedule
  ``alpha = sin(pi t / 2)``, ``std = cos(pi t / 2)`` and epsilon- or v-prediction
  (v = alpha eps - std x, Salimans & Ho 2022, eq. 6 in our time direction).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import Tensor

from textflow.errors import ConfigError, check_choice
from textflow.types import Latents, OneHotLatents, PathSample, dense


def expand_time(t: Tensor, like: Tensor) -> Tensor:
    """Broadcast ``t`` of shape (B,) or (B, L) against latents (B, L, D)."""
    if t.dim() == 1:
        return t.view(-1, *([1] * (like.dim() - 1)))
    if t.dim() == like.dim() - 1:
        return t.unsqueeze(-1)
    raise ValueError(f"t must have shape (B,) or (B, L) for latents {tuple(like.shape)}, got {tuple(t.shape)}")


def churn_time(alpha: Tensor | float, t: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
    """The churn factor as a tensor that broadcasts against latents ``z`` (B, L, D), and ``t_b = alpha t``.

    ``alpha`` is a float (one factor for everything), (B,) (one per sequence) or (B, L) (one per token);
    ``t`` is (B,) or (B, L). ``t_b`` has the finer of the two shapes (per-token if either is).
    """
    a = alpha if isinstance(alpha, Tensor) else torch.as_tensor(alpha, dtype=z.dtype, device=z.device)
    if a.dim() == 0:
        return a, a * t
    if a.dim() > t.dim():  # per-token alpha, per-sequence time
        t = t.unsqueeze(-1)
    elif a.dim() < t.dim():  # per-sequence alpha, per-token time
        a = a.unsqueeze(-1)
    t_b = a * t
    return expand_time(a.expand_as(t_b), z), t_b


class ProbPath(ABC):
    """A noising path plus the conversions samplers need."""

    sigma: float = 1.0
    prediction: str = "x"

    @abstractmethod
    def alpha(self, t: Tensor) -> Tensor: ...

    @abstractmethod
    def std(self, t: Tensor) -> Tensor: ...

    def sample(self, x: Latents, t: Tensor, noise: Tensor) -> PathSample:
        """``z_t = alpha(t) x + std(t) noise`` (noise is a standard normal draw). The sum is taken in place
        on the noise term, so a (B, L, D) temporary fewer is alive at once (a one-hot latent's D is the
        vocabulary); the same floats, since addition commutes exactly. One-hot latents held as ids
        (:class:`~textflow.types.OneHotLatents`) add their signal at the tokens' coordinates only."""
        tt = expand_time(t, noise)
        if isinstance(x, OneHotLatents):
            return PathSample(x=x, noise=noise, t=t, z=x.add_scaled_(self.std(tt) * noise, self.alpha(tt)))
        z, signal = self.std(tt) * noise, self.alpha(tt) * x
        z = z.add_(signal) if (z.dtype, z.shape) == (signal.dtype, signal.shape) else z + signal
        return PathSample(x=x, noise=noise, t=t, z=z)

    def prior_scale(self) -> float:
        """Standard deviation of ``z_0`` (pure noise)."""
        return float(self.std(torch.zeros(())))

    @abstractmethod
    def target(self, sample: PathSample) -> Tensor:
        """What the network output is regressed onto for this sample."""

    @abstractmethod
    def to_x_hat(self, output: Tensor, z: Tensor, t: Tensor) -> Tensor:
        """Convert a network output at ``(z, t)`` into the posterior-mean estimate ``x_hat``."""

    @abstractmethod
    def velocity(self, x_hat: Tensor, z: Tensor, t: Tensor) -> Tensor:
        """Probability-flow velocity ``dz/dt`` at ``(z, t)`` given ``x_hat``."""

    @abstractmethod
    def x_hat_for_velocity(self, v: Tensor, z: Tensor, t: Tensor) -> Tensor:
        """Inverse of :meth:`velocity`: the ``x_hat`` whose velocity at ``(z, t)`` is ``v``."""

    @abstractmethod
    def renoise(self, z: Tensor, t: Tensor, alpha: Tensor | float, noise: Tensor) -> tuple[Tensor, Tensor]:
        """Churn: move ``z`` back from ``t`` to ``t_b = alpha * t`` with fresh ``noise``; ``alpha`` is a
        float, (B,) or (B, L) (per-token churn), ``t`` (B,) or (B, L) (:func:`churn_time`)."""

    @abstractmethod
    def noise_to_signal(self, t: Tensor) -> Tensor:
        """``s(t)``: the x-axis of flip-rate plots (docs/conventions.md)."""


class LinearPath(ProbPath):
    """Rectified-flow path ``z_t = t x + (1 - t) sigma eps`` with x-prediction (docs/conventions.md).

    Args:
        sigma: noise scale of the prior (1.0 in ELF and the paper).
        t_eps: lower clamp on ``1 - t`` in the velocity, so the last Euler step stays finite.
    """

    prediction = "x"

    def __init__(self, *, sigma: float = 1.0, t_eps: float = 1e-3):
        if sigma <= 0:
            raise ConfigError(f"path.sigma={sigma} is invalid; the noise scale must be > 0")
        self.sigma = float(sigma)
        self.t_eps = float(t_eps)

    def alpha(self, t):
        return t

    def std(self, t):
        return self.sigma * (1 - t)

    def target(self, sample):
        return sample.x

    def to_x_hat(self, output, z, t):
        return output

    def velocity(self, x_hat, z, t):
        one_minus_t = (1 - expand_time(t, z)).clamp_min(self.t_eps)
        return (x_hat - z) / one_minus_t

    def x_hat_for_velocity(self, v, z, t):
        return z + (1 - expand_time(t, z)).clamp_min(self.t_eps) * v

    def renoise(self, z, t, alpha, noise):
        """ELF churn (docs/samplers.md): ``t_b = alpha t``, ``z_b = alpha z + (1 - alpha) sigma eps``."""
        aa, t_b = churn_time(alpha, t, z)
        return aa * z + (1 - aa) * self.sigma * noise, t_b

    def noise_to_signal(self, t):
        return self.sigma * (1 - t) / t.clamp_min(1e-12)


class VPPath(ProbPath):
    """Variance-preserving cosine diffusion path, ``alpha = sin(pi t / 2)``, ``std = cos(pi t / 2)``.

    Args:
        prediction: ``"eps"`` (noise prediction, DDPM) or ``"v"`` (v-prediction, Salimans & Ho 2022).
        alpha_min: clamp on alpha when an epsilon-prediction is converted to ``x_hat`` near t = 0,
            and on std in the velocity near t = 1.
    """

    def __init__(self, *, prediction: str = "v", alpha_min: float = 1e-2):
        check_choice("path.prediction", prediction, ("eps", "v"))
        self.prediction = prediction
        self.alpha_min = float(alpha_min)
        self.sigma = 1.0

    def alpha(self, t):
        return torch.sin(0.5 * math.pi * t)

    def std(self, t):
        return torch.cos(0.5 * math.pi * t)

    def target(self, sample):
        if self.prediction == "eps":
            return sample.noise
        tt = expand_time(sample.t, sample.noise)
        return self.alpha(tt) * sample.noise - self.std(tt) * dense(sample.x)

    def to_x_hat(self, output, z, t):
        tt = expand_time(t, z)
        a, s = self.alpha(tt), self.std(tt)
        if self.prediction == "eps":
            return (z - s * output) / a.clamp_min(self.alpha_min)
        return a * z - s * output

    def velocity(self, x_hat, z, t):
        # dz/dt = alpha' x_hat + std' eps_hat with eps_hat = (z - alpha x_hat) / std
        #       = (pi/2) (x_hat - alpha z) / std
        tt = expand_time(t, z)
        return 0.5 * math.pi * (x_hat - self.alpha(tt) * z) / self.std(tt).clamp_min(self.alpha_min)

    def x_hat_for_velocity(self, v, z, t):
        tt = expand_time(t, z)
        return self.alpha(tt) * z + self.std(tt).clamp_min(self.alpha_min) * v / (0.5 * math.pi)

    def renoise(self, z, t, alpha, noise):
        """Exact forward re-noising from ``t`` to ``t_b = alpha t`` along the VP marginals."""
        _, t_b = churn_time(alpha, t, z)
        tt, tb = expand_time(t, z), expand_time(t_b, z)
        ratio = self.alpha(tb) / self.alpha(tt).clamp_min(self.alpha_min)
        extra = (self.std(tb) ** 2 - (ratio * self.std(tt)) ** 2).clamp_min(0).sqrt()
        return ratio * z + extra * noise, t_b

    def noise_to_signal(self, t):
        return self.std(t) / self.alpha(t).clamp_min(1e-12)
