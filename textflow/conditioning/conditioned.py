"""Conditioning and classifier-free guidance as a denoiser wrapper (docs/conditioning.md; ELF's
conditional generation, arXiv 2606.30705).

Every network call sees the given positions clean (``z <- m c + (1 - m) z``) at per-token time 1, and
every returned ``x_hat`` is ``c`` there, so the velocity ``(x_hat - z) / (1 - t)`` is zero on them and
the samplers' own state keeps them (``textflow.samplers.Sampler`` also starts from ``c`` there and
restores the final latents). With CFG scale ``w_c``::

    x_hat = x_hat_u + w_c (x_hat_c - x_hat_u)

where the unconditional branch ``x_hat_u`` sees the given positions zeroed (in ``z`` and in a
self-conditioning ``x_prev``), as condition dropout trains. ``w_c = 1`` is one call per step, ``w_c = 0``
the unconditional call alone, any other value two calls (counted in ``nfe``).

A self-conditioning ``x_prev`` is restored the same way (``c`` in the conditional branch, zeros in the
unconditional one; ELF's rule), so :class:`textflow.guidance.SelfConditioned` may wrap this wrapper:
SC-CFG and CFG are both linear in the branch outputs, so their nesting order does not change ``x_hat``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from textflow.checks import require_number
from textflow.conditioning.condition import Condition
from textflow.types import DenoiserWrapper


class Conditioned(DenoiserWrapper):
    """``Conditioned(denoiser, condition, cfg_scale=w_c)(z, t[, x_prev]) -> x_hat``.

    Args:
        denoiser: a denoiser (``textflow.types.Denoiser``); a self-conditioned one is called with
            ``x_prev`` (and any keyword, e.g. ``scale``, is passed through).
        condition: the batch's :class:`Condition` (its rows are the batch's rows).
        cfg_scale: classifier-free guidance scale on the condition (finite, >= 0; 1 = no guidance).
    """

    def __init__(self, denoiser, condition: Condition, *, cfg_scale: float = 1.0):
        self.denoiser = denoiser
        self.condition = condition
        self.cfg_scale = require_number("sampler.cfg_scale", cfg_scale, low=0, hint=" (1 = no guidance)")

    @property
    def calls_per_step(self) -> int:
        """Network calls per denoiser call: 1 for ``cfg_scale`` 0 or 1, else 2."""
        return 1 if self.cfg_scale in (0.0, 1.0) else 2

    def _branch(self, z: Tensor, t: Tensor, x_prev, given: bool, kwargs: dict) -> Tensor:
        fill = self.condition.restore if given else self.condition.blank
        times = self.condition.times(t)
        if not getattr(self.denoiser, "self_conditioned", False):
            return self.denoiser(fill(z), times, **kwargs)
        prev = fill(torch.zeros_like(z) if x_prev is None else x_prev)
        return self.denoiser(fill(z), times, prev, **kwargs)

    def __call__(self, z: Tensor, t: Tensor, x_prev: Tensor | None = None, **kwargs) -> Tensor:
        if z.shape[:2] != self.condition.mask.shape:
            raise ValueError(f"Conditioned holds a condition for latents {tuple(self.condition.mask.shape)} but was "
                             f"called with z of shape {tuple(z.shape)}")
        if self.cfg_scale == 0.0:
            x_hat = self._branch(z, t, x_prev, False, kwargs)
        else:
            x_hat = self._branch(z, t, x_prev, True, kwargs)
            if self.cfg_scale != 1.0:
                uncond = self._branch(z, t, x_prev, False, kwargs)
                x_hat = uncond + self.cfg_scale * (x_hat - uncond)
        return self.condition.restore(x_hat)

    def __repr__(self) -> str:
        return f"Conditioned({self.denoiser!r}, cfg_scale={self.cfg_scale:g})"
