"""Continuous sample quality for the smooth image control (no judge LM: there is no text).

* ``frechet``: Fréchet distance between Gaussians fitted to the samples' and the held-out images'
  pixels (the FID formula of Heusel et al. 2017, eq. 6, on raw 64-pixel vectors instead of Inception
  features, which an 8x8 digit has no use for).
* ``nn_distance``: mean Euclidean distance from each sample to its nearest held-out image (fidelity).
* ``coverage_distance``: mean distance from each held-out image to its nearest sample (diversity).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor


def _sqrtm_psd(m: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((m + m.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2) of (N, P) samples."""
    x, y = a.double().numpy(), b.double().numpy()
    mu_x, mu_y = x.mean(0), y.mean(0)
    s_x, s_y = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = _sqrtm_psd(s_x)
    cross = _sqrtm_psd(root @ s_y @ root)
    return float(((mu_x - mu_y) ** 2).sum() + np.trace(s_x + s_y - 2 * cross))


def image_metrics(samples: Tensor, heldout: Tensor) -> dict[str, float]:
    """All continuous metrics of ``samples`` (N, P) against ``heldout`` (M, P) images."""
    samples, heldout = samples.float().cpu(), heldout.float().cpu()
    dist = torch.cdist(samples, heldout)
    return {"frechet": frechet_distance(samples, heldout), "nn_distance": float(dist.min(1).values.mean()),
            "coverage_distance": float(dist.min(0).values.mean()),
            "pixel_mean": float(samples.mean()), "pixel_std": float(samples.std())}


def save_image_grid(images: Tensor, path, *, side: int = 8, columns: int = 16, title: str = "") -> None:
    """A PNG grid of (N, side*side) grey images."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = min(len(images), columns * 4)
    rows = max(1, -(-n // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 0.6, rows * 0.6 + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i].reshape(side, side).clamp(0, 1).numpy(), cmap="gray_r", vmin=0, vmax=1)
    fig.suptitle(title, fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    os.replace(tmp, path)
    plt.close(fig)
