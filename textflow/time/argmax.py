"""FLM's time reparameterisation for one-hot latents (Lee et al. 2026, "One-step Language Modeling via
Continuous Denoising", arXiv 2602.16813; docs/autoencoders.md, "The one-hot latent space").

On the linear path ``z_t = t s e_y + (1 - t) sigma eps`` over one-hot latents of scale ``s`` in ``V``
dimensions, the token is read by argmax. The argmax of ``z_t`` is right with probability

    P(t) = E_{u ~ N(0, 1)} [ Phi(u + m(t))^(V - 1) ],    m(t) = (s / sigma) t / (1 - t),

(the true coordinate beats each of the V - 1 others), which is 1/V at t = 0 and tends to 1 as t -> 1.
Rescaled to ``a(t) = (V P(t) - 1) / (V - 1)`` in [0, 1], it is the time of the uniform-state discrete
diffusion that the argmax of the Gaussian path follows (the "diffusion duality" of Sahoo et al. 2025,
arXiv 2506.10892). For a large vocabulary ``a`` stays near 0 over most of [0, 1] and rises steeply
where ``m(t)`` reaches about ``sqrt(2 ln V)`` (t ~ 0.8 for V = 4096, s = sigma = 1): uniform path times
would spend most training steps and sampling steps where the latent carries no token information.
FLM draws ``a`` uniformly and trains at path time ``t = a^-1(a)``; its sampler steps on a grid
uniform in ``a``. :class:`ArgmaxAccuracyTime` is that distribution and grid.

One difference from FLM's code: FLM feeds the network ``a`` as its time input, textflow's backbone
reads the path time ``t`` (the two are a fixed monotone map of each other, so the network sees the
same information in another coordinate).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from textflow.checks import require_int, require_number
from textflow.errors import ConfigError
from textflow.noise import GeneratorArg, rand
from textflow.time.grids import check_steps

_U = torch.linspace(-12.0, 12.0, 2401, dtype=torch.float64)  # quadrature nodes for E_u[...], spacing 0.01
_WEIGHTS = torch.exp(-0.5 * _U ** 2) / math.sqrt(2 * math.pi) * (_U[1] - _U[0])
_WEIGHTS[[0, -1]] *= 0.5  # trapezoid rule


def argmax_accuracy(t: Tensor, *, vocab_size: int, snr: float) -> Tensor:
    """``a(t)`` of the module docstring (float64, in [0, 1]) at path times ``t``; ``snr = s / sigma``."""
    t = t.double()
    out = torch.empty_like(t)
    inner = (t > 0) & (t < 1)
    out[t <= 0], out[t >= 1] = 0.0, 1.0
    m = snr * t[inner] / (1 - t[inner])
    chunks = []
    for part in m.split(256):  # (256, 2401) at a time
        log_cdf = torch.special.log_ndtr(_U.unsqueeze(0) + part.unsqueeze(1))
        chunks.append(((vocab_size - 1) * log_cdf).exp() @ _WEIGHTS)
    p = torch.cat(chunks) if chunks else m
    out[inner] = ((vocab_size * p - 1) / (vocab_size - 1)).clamp(0.0, 1.0)
    return out


class ArgmaxAccuracyTime:
    """Training times and sampling grids uniform in the argmax accuracy ``a(t)`` (module docstring):
    ``sample`` draws ``a ~ U(0, 1)`` and returns ``t = a^-1(a)``; ``grid(K)`` is ``a^-1(k / K)``, with
    exact endpoints 0 and 1. ``a^-1`` interpolates a table of ``a`` on ``points`` path times.

    The three knobs describe the latent space. Left unset (``null``), they are read from the model by
    :meth:`fit`, which ``sample.py`` and the training module call (``time@sampler.time=flm`` needs no
    knob on a one-hot checkpoint); a value that is set is kept, so a study can sample on another
    latent space's grid on purpose.

    Args:
        vocab_size: V, the one-hot width (``a`` moves only with ``log V``).
        scale: the one-hot latents' scale ``s`` (``autoencoder.scale``).
        sigma: the prior's noise scale (``path.sigma``).
        points: size of the interpolation table.
    """

    def __init__(self, *, vocab_size: int | None = None, scale: float | None = None, sigma: float | None = None,
                 points: int = 4097):
        self.vocab_size = None if vocab_size is None else require_int("time.vocab_size", vocab_size, low=2)
        self.scale = None if scale is None else require_number("time.scale", scale, low=0, low_open=True)
        self.sigma = None if sigma is None else require_number("time.sigma", sigma, low=0, low_open=True)
        self.points = require_int("time.points", points, low=16)
        self._t = torch.linspace(0.0, 1.0, self.points, dtype=torch.float64)
        self._a = None if self.unset else self._table()

    @property
    def unset(self) -> list[str]:
        """The knobs still to be read from a model (:meth:`fit`)."""
        return [name for name in ("vocab_size", "scale", "sigma") if getattr(self, name) is None]

    def _table(self) -> Tensor:
        a = argmax_accuracy(self._t, vocab_size=self.vocab_size, snr=self.scale / self.sigma)
        # strictly increasing for the inverse: where a is flat in float64 (near 0 and near 1), a tiny
        # ramp in t orders the table without moving any value by more than 1e-9
        return torch.cummax(a, 0).values * (1 - 1e-9) + 1e-9 * self._t

    def fit(self, *, autoencoder, path) -> "ArgmaxAccuracyTime":
        """This distribution with its unset knobs read from a model's one-hot latent space (its vocabulary
        size and scale, the path's sigma); itself when every knob is set. A model whose latent space is
        not one-hot leaves nothing to read: that is refused in one line."""
        if not self.unset:
            return self
        if not getattr(autoencoder, "one_hot", False):  # OneHotAutoencoder.one_hot (this layer sits below it)
            raise ConfigError(f"time=flm (argmax-accuracy times) describes a one-hot latent space, and this model's "
                              f"autoencoder is {type(autoencoder).__name__}; train with autoencoder=onehot, or set "
                              f"{', '.join('time.' + name for name in self.unset)} to use its grid here")
        known = {"vocab_size": autoencoder.vocab_size, "scale": autoencoder.scale, "sigma": path.sigma}
        chosen = {name: known[name] if getattr(self, name) is None else getattr(self, name) for name in known}
        return ArgmaxAccuracyTime(**chosen, points=self.points)

    def _require_fitted(self) -> None:
        if self._a is None:
            raise ConfigError(f"time=flm has no latent space yet ({', '.join('time.' + n for n in self.unset)} "
                              f"unset): sample.py and train.py read them from a one-hot model; elsewhere set them")

    def accuracy(self, t: Tensor) -> Tensor:
        """``a(t)`` (float64) at path times ``t`` (the quadrature itself, not the table)."""
        self._require_fitted()
        return argmax_accuracy(t, vocab_size=self.vocab_size, snr=self.scale / self.sigma)

    def to_time(self, a: Tensor) -> Tensor:
        """``a^-1(a)``: the path time whose argmax accuracy is ``a`` (piecewise linear in the table)."""
        self._require_fitted()
        a = a.double().clamp(0.0, 1.0)
        hi = torch.searchsorted(self._a, a).clamp(1, len(self._a) - 1)
        a0, a1 = self._a[hi - 1], self._a[hi]
        t0, t1 = self._t[hi - 1], self._t[hi]
        return (t0 + (a - a0) / (a1 - a0) * (t1 - t0)).clamp(0.0, 1.0)

    def sample(self, n: int, *, generator: GeneratorArg = None, device=None) -> Tensor:
        u = rand((n,), generator=generator, device=device)
        return self.to_time(u.cpu()).float().to(u.device)

    def grid(self, steps: int) -> Tensor:
        k = check_steps(steps)
        inner = self.to_time(torch.arange(1, k, dtype=torch.float64) / k)
        return torch.cat([torch.zeros(1, dtype=torch.float64), inner, torch.ones(1, dtype=torch.float64)]).float()
