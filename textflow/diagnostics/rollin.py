"""Oracle roll-in (docs/diagnostics.md): noise real latents exactly to the time at which a K-step sampler
takes its terminal step, call the network once, decode, and count the tokens that differ from the
clean decode. ``flip_curve`` does it at every step of the K-step grid; ``curve_spread`` measures how
close the curves of several K lie to one curve in s(t)."""

from __future__ import annotations

import math
import statistics

import torch
from torch import Tensor

from textflow.kernels import readout_argmax
from textflow.time.grids import UniformTime


def terminal_time(steps: int, time=None) -> float:
    """The time of the last network call of a K-step sampler on ``time``'s grid (uniform default)."""
    grid = (time or UniformTime()).grid(steps)
    return float(grid[-2])


@torch.no_grad()
def terminal_residual(denoiser, x: Tensor, t: float, *, generator: torch.Generator | None = None) -> Tensor:
    """``x_hat(z_t, t) - x`` for ``z_t`` drawn exactly from the path at time ``t``."""
    noise = torch.randn(x.shape, generator=generator).to(x)
    tt = torch.full((x.shape[0],), float(t), device=x.device)
    z = denoiser.path.sample(x, tt, noise).z
    return denoiser(z, tt) - x


@torch.no_grad()
def oracle_flip_rate(denoiser, x: Tensor, t: float, *, generator: torch.Generator | None = None,
                     clean: Tensor | None = None) -> float:
    """Fraction of tokens whose decode after one network call at ``t`` differs from the clean decode
    (``clean``: the decoded tokens of ``x``, when the caller has them)."""
    clean = readout_argmax(denoiser.readout, x, head=_head(denoiser)) if clean is None else clean
    x_hat = x + terminal_residual(denoiser, x, t, generator=generator)
    return float((readout_argmax(denoiser.readout, x_hat, head=_head(denoiser)) != clean).float().mean())


@torch.no_grad()
def flip_curve(denoiser, x: Tensor, steps: int, *, time=None, generator: torch.Generator | None = None,
               clean: Tensor | None = None) -> list[dict]:
    """Oracle roll-in flip rate at every network call of a K-step sampler (docs/diagnostics.md): for each
    grid time ``t_i`` with ``0 < t_i < 1``, noise ``x`` exactly to ``z_{t_i}``, call the network once
    and compare the decode with the clean decode. Rows: ``t``, ``s`` = s(t), ``flip``."""
    grid = (time or UniformTime()).grid(steps)
    clean = readout_argmax(denoiser.readout, x, head=_head(denoiser)) if clean is None else clean
    rows = []
    for t in grid[:-1].tolist():
        if t <= 0.0:
            continue  # pure noise: s(t) is infinite and the decode carries no information about x
        s = float(denoiser.path.noise_to_signal(torch.tensor(t)))
        rows.append({"t": t, "s": s, "flip": oracle_flip_rate(denoiser, x, t, generator=generator, clean=clean)})
    return rows


def _head(denoiser):
    """The denoiser's linear readout head when it has one (:func:`textflow.kernels.readout_chunks`)."""
    return getattr(denoiser, "readout_head", None)


def curve_spread(curves: dict[int, list[dict]]) -> dict:
    """How close flip-vs-s curves of several K lie to one curve: each point of every curve is compared
    with the densest curve (largest K) interpolated at the same s (linear in log s); reports the
    median and max of |flip - reference| and of its ratio to the reference (points with a reference
    flip of 0 are left out of the relative figures)."""
    ref_k = max(curves)
    ref = sorted((r["s"], r["flip"]) for r in curves[ref_k])
    log_s = torch.tensor([math.log(s) for s, _ in ref])
    ref_flip = torch.tensor([f for _, f in ref])
    abs_dev, rel_dev = [], []
    for k, rows in curves.items():
        if k == ref_k:
            continue
        for r in rows:
            ls = math.log(r["s"])
            if not float(log_s[0]) <= ls <= float(log_s[-1]):
                continue  # outside the reference's s range: no interpolation
            j = int(torch.searchsorted(log_s, torch.tensor(ls)).clamp(1, len(ref) - 1))
            w = (ls - float(log_s[j - 1])) / max(float(log_s[j] - log_s[j - 1]), 1e-12)
            expected = float(ref_flip[j - 1] * (1 - w) + ref_flip[j] * w)
            abs_dev.append(abs(r["flip"] - expected))
            if expected > 0:
                rel_dev.append(abs(r["flip"] - expected) / expected)

    def stats(values):
        return (statistics.median(values), max(values)) if values else (float("nan"), float("nan"))

    (abs_median, abs_max), (rel_median, rel_max) = stats(abs_dev), stats(rel_dev)
    return {"reference_K": ref_k, "points": len(abs_dev), "abs_median": abs_median, "abs_max": abs_max,
            "rel_median": rel_median, "rel_max": rel_max}
