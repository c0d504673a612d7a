"""Self-conditioning and self-conditioning guidance (SC-CFG) as a denoiser wrapper (ELF's sampling
rule, arXiv 2606.30705; docs/samplers.md, "Self-conditioning and SC-CFG").

A self-conditioned network reads ``[z_t, x_prev]``, where ``x_prev`` is the previous network call's
posterior-mean estimate ``x_hat`` (zeros at the first call). With guidance scale ``w``::

    x_hat = x_hat_uncond + w (x_hat_sc - x_hat_uncond),
    x_hat_sc     = f(z, t, x_prev)        (self-conditioned call)
    x_hat_uncond = f(z, t, 0)             (the "unconditional" call: zeros as x_prev)

``w = 1`` is plain self-conditioning (one call), ``w = 0`` the unconditional call alone (one call),
any other ``w`` costs two calls per step, both counted in ``nfe`` (docs/conventions.md, "Counting
cost"). The remembered ``x_prev`` is the guided ``x_hat`` of the last call, whatever ``(z, t)`` it was
made at (the SDE's churned point, Heun's predictor, per-token times of ``commit``): ELF passes the
previous ``x_hat`` unchanged into the next call.

A model with scale tokens (``backbone.scale_tokens > 0``, ELF's in-context variant) learned the guided
estimate itself: one call ``f(z, t, x_prev, w)`` gives it, so every ``w`` costs one call per step
(docs/samplers.md, "Scale tokens").
"""

from __future__ import annotations

from typing import Optional

from torch import Tensor

from textflow.checks import require_number
from textflow.types import DenoiserWrapper


class SelfConditioned(DenoiserWrapper):
    """``SelfConditioned(denoiser, scale=w)(z, t) -> x_hat`` with the self-conditioning memory.

    Args:
        denoiser: a self-conditioned denoiser, callable as ``denoiser(z, t, x_prev)`` (x_prev None =
            zeros), e.g. :class:`textflow.denoiser.FlowDenoiser` on a ``self_condition`` backbone.
        scale: the SC-CFG scale ``w`` (finite, >= 0; 1 = plain self-conditioning).
        x_prev: the estimate the first call is conditioned on (None: zeros, a sampler's first step).

    The memory holds one row per sample (the shape of ``z``), so a sample's result does not depend on
    the batch it is in. Make one wrapper per batch (``textflow.samplers.Sampler`` does, per call) or
    call :meth:`reset` in between. Every other attribute (``nfe``, ``path``, ``readout``, ``embed``,
    ``autoencoder``, ``backbone``, ...) is the wrapped denoiser's.
    """

    def __init__(self, denoiser, *, scale: float = 1.0, x_prev: Optional[Tensor] = None):
        self.denoiser = denoiser
        self.scale = require_number("sampler.sc_scale", scale, low=0, hint=" (1 = plain self-conditioning)")
        self.x_prev = x_prev

    def reset(self, x_prev: Optional[Tensor] = None) -> None:
        """Forget the remembered estimate (the next call is a first step)."""
        self.x_prev = x_prev

    @property
    def one_pass(self) -> bool:
        """Whether the network reads the scale itself (scale tokens): one call at any scale."""
        return getattr(self.denoiser, "scale_range", None) is not None

    @property
    def calls_per_step(self) -> int:
        """Network calls per denoiser call: 1 for ``scale`` 0 or 1 or a scale-token model, else 2."""
        return 1 if self.one_pass or self.scale in (0.0, 1.0) else 2

    def __call__(self, z: Tensor, t: Tensor) -> Tensor:
        prev = self.x_prev
        if prev is not None and prev.shape != z.shape:
            raise ValueError(f"SelfConditioned remembers x_hat of shape {tuple(prev.shape)} but was called with z "
                             f"of shape {tuple(z.shape)}; use one wrapper per batch (or reset())")
        if self.one_pass:
            x_hat = self.denoiser(z, t, prev, scale=self.scale)
        elif self.scale == 1.0:
            x_hat = self.denoiser(z, t, prev)
        elif self.scale == 0.0:
            x_hat = self.denoiser(z, t, None)
        else:
            uncond = self.denoiser(z, t, None)
            cond = self.denoiser(z, t, prev)
            x_hat = uncond + self.scale * (cond - uncond)
        self.x_prev = x_hat
        return x_hat

    def __repr__(self) -> str:
        return f"SelfConditioned({self.denoiser.__class__.__name__}, scale={self.scale:g})"
