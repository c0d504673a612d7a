"""Boundary-adaptive churn: noise only near a decision boundary (docs/samplers.md, ``adaptive``; issue #16).

The paper's account (arXiv 2606.30705): few-step ODE sampling fails because the posterior mean of an
undecided token sits near a decision boundary of the sharp readout, and noise re-injection lets it pick a
side. So the noise is only needed where the readout is undecided. This sampler is ``sde`` (ELF churn) with
a per-token churn: per step ``h = t' - t``

* every token's *closeness* ``c`` in [0, 1] to a decision boundary is read from the PREVIOUS step's
  readout logits (the readout of the previous ``x_hat``); step 0 has no readout yet and uses ``c = 1``
  everywhere, so the first step is the plain ``sde`` step;
* ``alpha = max(1 - gamma c h, 0)`` per token (the last step: ``alpha = 1``, no noise, it returns
  ``x_hat`` like every sampler), and the path re-noises each token to its own ``t_b = alpha t``
  (:meth:`textflow.paths.ProbPath.renoise` with a (B, L) ``alpha``); a token with ``alpha = 1`` keeps
  its latent exactly;
* as in ELF the churn comes BEFORE the network call: the network is evaluated at ``(z_b, t_b)`` with
  per-token time, then one Euler step per token from ``t_b`` to ``t'``.

Closeness (``closeness``), an exponential in a *decidedness* ``d`` in [0, 1], ``c = exp(-d / scale)``:

* ``margin``  – ``d = p1 - p2``, the gap between the top-2 readout probabilities: ``c = 1`` at a tie,
  ``exp(-1 / scale)`` for a fully decided token (1.8% of the full churn at the default scale 0.25);
* ``entropy`` – ``d = max(0, 1 - H / log 2)`` with ``H`` the readout entropy in nats: ``c = 1`` at a
  two-way tie or anything less decided (``H >= log 2``, vocabulary-independent), ``exp(-1 / scale)`` at
  ``H = 0``; unlike ``margin`` it also counts probability spread over the tail as indecision;
* ``one``     – ``c = 1`` everywhere: the sampler is ``sde`` at the same gamma, bit for bit (no readout
  is called, so it runs on any autoencoder).

Resolution (``levels``, default :data:`DEFAULT_LEVELS` = 256): an integer ``n`` rounds ``c`` to a
multiple of ``1 / n``, so a step has at most ``n + 1`` distinct times; the backbone computes its time
condition (adaLN) for those and gathers it per token (:class:`textflow.backbones.DiT`). ``None`` keeps ``c``
continuous: every token has its own time and the condition is computed per token, about half again the
FLOPs of a network call. ``alpha`` moves by at most ``gamma h / (2 n)`` and a token with ``c < 1 / (2 n)``
gets no noise at all (it follows the ODE exactly). At 256 the samples are continuous closeness's up to
0.1-0.4 % of their tokens while a call costs what ``levels=16`` costs (docs/samplers.md, "Resolution";
docs/benchmarks.md). ``c = 1`` stays 1 and ``gamma = 0`` stays the ODE, so both identities below hold
at every ``levels``.

``margin`` and ``entropy`` need per-token logits (B, L, V) from the readout (not the smooth image
autoencoder's pixels); they are read a cache-sized tile of logits at a time
(:func:`textflow.kernels.readout_top2`, :func:`textflow.kernels.readout_entropy`). When every
sequence gives all its tokens one ``alpha`` (step 0, ``one``) the times stay per-sequence (B,),
exactly ``sde``'s computation. Noise is drawn (``textflow.noise.randn``,
per-sample generators) only on a step where some ``alpha < 1``: ``gamma = 0`` draws nothing and equals
``ode`` bit for bit. NFE = K (plus one readout per non-final step with ``margin`` / ``entropy``).

Diagnostics: the callback's extras carry ``churn_alpha`` (B, L), ``closeness`` (B, L) and the running
``injected_noise``; ``SampleOutput.extras["injected_noise"]`` is the total, the sum over steps of the
mean over tokens of ``1 - alpha`` (for ``sde`` the same sum is ``sum_k (1 - alpha_k)``).

Knobs: ``gamma >= 0`` (ELF's churn strength), ``closeness`` (above), ``scale > 0`` (decidedness width),
``levels`` (an integer >= 1, the closeness resolution, or None for continuous closeness).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from textflow.checks import require_int, require_number
from textflow.errors import ConfigError, check_choice
from textflow.kernels import readout_entropy, readout_top2
from textflow.noise import randn
from textflow.samplers.registry import register_sampler
from textflow.samplers.steps import batch_time, emit, euler_update
from textflow.types import SampleOutput

CLOSENESS = ("margin", "entropy", "one")
DEFAULT_LEVELS = 256  # closeness resolution: continuous closeness's samples at a levels=16 call's cost (docstring)


def check_adaptive(*, gamma: float = 1.5, closeness: str = "margin", scale: float = 0.25,
                   levels: int | None = DEFAULT_LEVELS) -> None:
    require_number("sampler.gamma", gamma, low=0, hint=" (0 = the ODE)")
    check_choice("sampler.closeness", closeness, CLOSENESS)
    require_number("sampler.scale", scale, low=0, low_open=True, hint=" (the decidedness width)")
    if levels is not None:
        require_int("sampler.levels", levels, low=1, hint=" (null = continuous closeness)")


def decidedness(denoiser, x_hat: Tensor, *, closeness: str) -> Tensor:
    """Each token's decidedness in [0, 1], (B, L), from the readout of ``x_hat`` (module docstring)."""
    head = getattr(denoiser, "readout_head", None)
    try:
        if closeness == "margin":
            top2, _ = readout_top2(denoiser.readout, x_hat, head=head)
            return top2[..., 0] - top2[..., 1]
        entropy = readout_entropy(denoiser.readout, x_hat, head=head)
    except ValueError as err:
        raise ConfigError(f"sampler.closeness={closeness!r} needs per-token readout logits (B, L, V): {err} "
                          f"(not a categorical readout); use sampler.closeness=one") from None
    return (1.0 - entropy / math.log(2.0)).clamp_min(0.0)


def token_closeness(decided: Tensor, *, scale: float, levels: int | None = None) -> Tensor:
    """Closeness to a decision boundary in [0, 1], ``exp(-decided / scale)``, rounded to a multiple of
    ``1 / levels`` when ``levels`` is set (module docstring)."""
    close = torch.exp(-decided / scale)
    return close if levels is None else torch.round(close * levels) / levels


@register_sampler("adaptive", check=check_adaptive)
@torch.no_grad()
def sample_adaptive(denoiser, x_init, time_grid, *, generator=None, callback=None, gamma: float = 1.5,
                    closeness: str = "margin", scale: float = 0.25,
                    levels: int | None = DEFAULT_LEVELS) -> SampleOutput:
    """Per-token churn scaled by closeness to a decision boundary; see the module docstring."""
    check_adaptive(gamma=gamma, closeness=closeness, scale=scale, levels=levels)
    nfe_start, z = denoiser.nfe, x_init
    close = torch.ones(z.shape[:2], device=z.device, dtype=torch.float32)  # step 0: the plain sde step
    injected, k = 0.0, len(time_grid) - 1
    for i in range(k):
        t, t_next = batch_time(time_grid[i], z), batch_time(time_grid[i + 1], z)
        last = i == k - 1
        if last:
            alpha64 = torch.ones_like(close, dtype=torch.float64)
        else:  # float64 as sde's Python arithmetic: closeness one gives sde's alpha and draws exactly
            alpha64 = (1.0 - gamma * float((t_next - t).flatten()[0]) * close.double()).clamp_min(0.0)
        alpha = alpha64.to(z.dtype)
        z_b, t_b = z, t
        if bool((alpha64 < 1).any()):
            noise = randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
            uniform = bool((alpha == alpha[:, :1]).all())  # (B,) times when each row is one alpha
            z_b, t_b = denoiser.path.renoise(z, t, alpha[:, 0] if uniform else alpha, noise)
            keep = alpha == 1  # decided tokens: exactly no noise, whatever the path's clamps do
            if bool(keep.any()):
                z_b = torch.where(keep.unsqueeze(-1), z, z_b)
        x_hat = denoiser(z_b, t_b)
        if last:
            z = x_hat
        else:
            t_to = t_next if t_b.dim() == 1 else t_next.unsqueeze(-1).expand_as(t_b)
            z = euler_update(denoiser, z_b, x_hat, t_b, t_to)
        injected += float((1.0 - alpha.double()).mean())
        emit(callback, denoiser, i, t_b, t_next, z_b, x_hat, churn_alpha=alpha, closeness=close,
             injected_noise=injected)
        if not last and closeness != "one":
            close = token_closeness(decidedness(denoiser, x_hat, closeness=closeness), scale=scale, levels=levels)
    return SampleOutput(latents=z, nfe=denoiser.nfe - nfe_start, time_grid=time_grid,
                        extras={"injected_noise": injected})
