"""Tube law (science.md §4): the terminal posterior mean sits within O(s(t)) of the data, so the
fraction of tokens it flips is the probability mass of geometric margins inside that tube:

    predicted flip(t) ~ sqrt(2 / pi) * p_m(0) * s(t)

with ``p_m(0)`` the density of geometric margins at 0, estimated here from clean latents as
``P(|m| < h) / (2 h)`` with ``h`` a fixed fraction of the median |margin| (textflow's estimator;
the paper's exact estimator is not given)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class TubeLaw:
    density_at_zero: float  # p_m(0)
    bandwidth: float  # h
    median_margin: float

    def predicted_flip(self, noise_to_signal: float) -> float:
        return math.sqrt(2 / math.pi) * self.density_at_zero * noise_to_signal


def tube_law(geometric_margin: Tensor, *, bandwidth_fraction: float = 0.25) -> TubeLaw:
    """Estimate ``p_m(0)`` from geometric margins (any shape; they are non-negative for argmax decodes,
    so the two-sided density at 0 is half the one-sided mass per unit width)."""
    m = geometric_margin.flatten().abs().double()
    median = float(m.median())
    h = max(bandwidth_fraction * median, 1e-12)
    one_sided = float((m < h).double().mean()) / h
    return TubeLaw(density_at_zero=one_sided / 2, bandwidth=h, median_margin=median)
