"""Uncertainty: bootstrap confidence intervals over samples (Efron 1979, percentile method)."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


def bootstrap_ci(values: Sequence, statistic: Callable[[np.ndarray], float], *, n_boot: int = 1000,
                 level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile CI of ``statistic`` when the samples (rows of ``values``) are resampled with
    replacement ``n_boot`` times with a fixed seed."""
    data = np.asarray(values, dtype=np.float64)
    if len(data) < 2:
        value = float(statistic(data)) if len(data) else float("nan")
        return value, value
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(data), size=(n_boot, len(data)))
    stats = np.array([statistic(data[i]) for i in idx])
    lo, hi = np.quantile(stats, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def ppl_statistic(rows: np.ndarray) -> float:
    """Gen-PPL from rows of (summed NLL, token count)."""
    return float(np.exp(rows[:, 0].sum() / max(rows[:, 1].sum(), 1)))
