"""Tube law (docs/diagnostics.md): the terminal posterior mean sits within O(s(t)) of the data, so the
fraction of tokens it flips is the probability mass of geometric margins inside that tube:

    predicted flip(t) ~ sqrt(2 / pi) * p_m(0) * s(t)

with ``p_m(0)`` the density of geometric margins at 0, estimated here from clean latents as
``P(|m| < h) / (2 h)`` with ``h`` a fixed fraction of the median |margin| (textflow's estimator;
the paper's exact estimator is not given).

The linear law is the small-s limit of the margin tail ``E_m[P(s Z > m)] = E_m[Phi(-m / s)]``
(``Z ~ N(0, 1)``: the terminal error's component along the boundary normal, toward the runner-up).
When the clean margins have no mass near 0 (a per-token embedding latent, whose margins take one
value per vocabulary row) the linear law predicts ~0 flips however large s is; ``predicted_flip_tail``
keeps the whole margin distribution (textflow's addition, reported beside the paper's law)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class TubeLaw:
    density_at_zero: float  # p_m(0)
    bandwidth: float  # h
    median_margin: float
    margins: Tensor | None = field(default=None, repr=False)  # |m|, flattened (float64)

    def predicted_flip(self, noise_to_signal: float) -> float:
        """The paper's linear tube law, sqrt(2/pi) p_m(0) s(t)."""
        return math.sqrt(2 / math.pi) * self.density_at_zero * noise_to_signal

    def predicted_flip_tail(self, noise_to_signal: float) -> float:
        """Mean over tokens of ``P(s Z > |m|) = erfc(|m| / (s sqrt 2)) / 2``; equals the linear law
        for small ``s`` when the margin density is smooth at 0."""
        if self.margins is None:
            raise ValueError("this TubeLaw was built without margins")
        if noise_to_signal <= 0:
            return 0.0
        return float(0.5 * torch.erfc(self.margins / (noise_to_signal * math.sqrt(2))).mean())


def tube_law(geometric_margin: Tensor, *, bandwidth_fraction: float = 0.25) -> TubeLaw:
    """Estimate ``p_m(0)`` from geometric margins (any shape; they are non-negative for argmax decodes,
    so the two-sided density at 0 is half the one-sided mass per unit width)."""
    m = geometric_margin.flatten().abs().double()
    median = float(m.median())
    h = max(bandwidth_fraction * median, 1e-12)
    one_sided = float((m < h).double().mean()) / h
    return TubeLaw(density_at_zero=one_sided / 2, bandwidth=h, median_margin=median, margins=m)
