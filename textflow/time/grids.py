"""Time distributions for training and time grids for sampling (docs/samplers.md, "time grids are their
own choice").

Each object does two jobs: ``sample(n, generator)`` draws training times, and ``grid(steps)`` returns
the K + 1 sampling times from 0 (noise) to 1 (data) as the distribution's quantiles, so a sampler
spends its steps where training spent its samples.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from textflow.checks import require_int, require_number
from textflow.noise import GeneratorArg, rand


def fit_time(time, *, autoencoder, path):
    """``time`` fitted to a model: a distribution whose knobs describe the latent space (``fit``:
    :class:`textflow.time.ArgmaxAccuracyTime` reads the one-hot vocabulary, scale and sigma) returns its
    fitted copy; any other is returned as it is."""
    fit = getattr(time, "fit", None)
    return time if fit is None else fit(autoencoder=autoencoder, path=path)


def check_steps(steps) -> int:
    return require_int("sampler.steps", steps, low=1)


class UniformTime:
    """``t ~ U(0, 1)``; grid ``t_k = k / K``."""

    def sample(self, n: int, *, generator: GeneratorArg = None, device=None) -> Tensor:
        return rand((n,), generator=generator, device=device)

    def grid(self, steps: int) -> Tensor:
        return torch.linspace(0.0, 1.0, check_steps(steps) + 1, dtype=torch.float64).float()


class LogitNormalTime:
    """``logit(t) ~ N(mean, std^2)`` (SD3 / ELF); grid = quantiles ``Phi^-1(k / K)`` pushed through
    the sigmoid, with exact endpoints 0 and 1."""

    def __init__(self, *, mean: float = 0.0, std: float = 1.0):
        self.mean = require_number("time.mean", mean)
        self.std = require_number("time.std", std, low=0, low_open=True)

    def sample(self, n: int, *, generator: GeneratorArg = None, device=None) -> Tensor:
        u = rand((n,), generator=generator, device=device).clamp(1e-6, 1 - 1e-6)
        return torch.sigmoid(self.mean + self.std * math.sqrt(2.0) * torch.erfinv(2 * u - 1))

    def grid(self, steps: int) -> Tensor:
        k = check_steps(steps)
        q = torch.linspace(0.0, 1.0, k + 1, dtype=torch.float64)
        inner = q[1:-1]
        logits = self.mean + self.std * math.sqrt(2.0) * torch.erfinv(2 * inner - 1)
        return torch.cat([q[:1] * 0, torch.sigmoid(logits), q[-1:] * 0 + 1]).float()


class RandomLogitNormalTime(LogitNormalTime):
    """ELF's sampling grid: K - 1 sorted random logit-normal draws between the endpoints 0 and 1,
    drawn from a generator seeded with ``seed`` (so the grid is reproducible and shared across runs
    that use the same seed)."""

    def __init__(self, *, mean: float = 0.0, std: float = 1.0, seed: int = 0):
        super().__init__(mean=mean, std=std)
        self.seed = require_int("time.seed", seed)

    def grid(self, steps: int) -> Tensor:
        k = check_steps(steps)
        inner = self.sample(k - 1, generator=torch.Generator().manual_seed(self.seed)).double().sort().values
        inner = inner.clamp(1e-6, 1 - 1e-6)
        return torch.cat([torch.zeros(1, dtype=torch.float64), inner, torch.ones(1, dtype=torch.float64)]).float()
