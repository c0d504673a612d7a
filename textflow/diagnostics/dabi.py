"""DABI: decoder amplification of a boundary-aligned perturbation (arXiv 2606.30705; docs/diagnostics.md).

    DABI(f) = E[R(x + f r)] / E[R(x + f |r| u)]

with ``r`` a structured direction (the sampler's realised terminal residual, or the boundary normal
scaled to the residual's norm), ``u`` an isotropic random unit direction per position (several
draws), and response ``R`` either ``ce`` (increase of the cross-entropy of the clean decode ``y``) or
``flip`` (``1[argmax changes]``). When the isotropic response is 0 the ratio is reported as a lower
bound: the denominator is replaced by the smallest measurable response (one flip among all
isotropic trials) and ``lower_bound`` is set; when neither direction responds, or the isotropic
mean CE change is <= 0, the ratio is NaN.
The cosine alignment ``cos^2(r, n)`` with the boundary normal is reported beside it, against its
isotropic value ``1 / D``: a small-``f`` CE ratio alone is not sharpness (docs/diagnostics.md pitfall).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from textflow.diagnostics.boundary import BoundaryGeometry, boundary_geometry
from textflow.errors import check_choice
from textflow.kernels import perturbation_stats, readout_token_stats
from textflow.kernels.readout_chunks import Head

F_GRID = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)  # the perturbation scales the readout diagnostics report


@dataclass
class DabiCurve:
    f: list[float]
    structured: list[float]  # E[R] along r
    isotropic: list[float]  # E[R] along norm-matched random directions
    ratio: list[float]
    lower_bound: list[bool]
    response: str
    alignment_cos2: float  # mean cos^2(r, boundary normal)
    isotropic_cos2: float  # 1 / D
    extras: dict = field(default_factory=dict)

    def at(self, f: float) -> float:
        return self.ratio[min(range(len(self.f)), key=lambda i: abs(self.f[i] - f))]


RESPONSES = ("flip", "ce")
DIRECTIONS = ("residual", "boundary")


def _responses(decoded: Tensor, ce: Tensor, tokens: Tensor, base_ce: Tensor) -> dict[str, float]:
    """Both responses of one perturbation: flip rate and mean CE increase."""
    return {"flip": float((decoded != tokens).float().mean()), "ce": float((ce - base_ce).mean())}


def _perturbation_stats(readout, x: Tensor, tokens: Tensor, deltas: list[Tensor], f_grid: Sequence[float],
                        head: Head | None) -> dict[tuple[int, float], tuple[Tensor, Tensor]]:
    """``{(i, f): (decoded, CE)}`` at ``x + f * deltas[i]``: through
    :func:`textflow.kernels.perturbation_stats` (one matmul per direction) when the readout is linear in
    the latents (its head's features are the latents themselves), else one chunked readout call each."""
    parts = None if head is None else head(x)
    if parts is not None and parts[0] is x:
        return perturbation_stats(x, tokens, parts[1], parts[2], deltas, f_grid)
    return {(i, f): readout_token_stats(readout, x + f * delta, tokens, head=head)
            for f in f_grid for i, delta in enumerate(deltas)}


@torch.no_grad()
def dabi_curves(readout: Callable[[Tensor], Tensor], x: Tensor, r: Tensor, *,
                directions: Sequence[str] = DIRECTIONS, responses: Sequence[str] = RESPONSES,
                f_grid: Sequence[float] = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0), isotropic_draws: int = 8,
                generator: torch.Generator | None = None,
                geometry: BoundaryGeometry | None = None, head: Head | None = None) -> dict[str, DabiCurve]:
    """DABI over ``f_grid`` for clean latents ``x`` (B, L, D) and residual ``r`` (same shape), one curve
    per ``"direction/response"``.

    ``direction="boundary"`` replaces ``r`` by the boundary normal scaled to ``|r|`` per position. Every
    readout call serves both responses, and the isotropic directions (norm-matched to ``|r|``, which both
    directions share) are scored once for all curves: ``len(f_grid) x (isotropic_draws + len(directions))``
    perturbations in all, each one chunked readout call, or for a readout linear in the latents one matmul
    per direction for all scales (:func:`textflow.kernels.perturbation_stats`). ``geometry`` (:func:`boundary_geometry` at ``x``) is reused when given; ``head``
    (the readout's linear head, :func:`textflow.kernels.readout_chunks`) makes each call one chunked matmul.
    """
    for d in directions:
        check_choice("direction", d, DIRECTIONS)
    for kind in responses:
        check_choice("response_kind", kind, RESPONSES)
    geo = boundary_geometry(readout, x, head=head) if geometry is None else geometry
    tokens = geo.tokens
    r_norm = r.norm(dim=-1, keepdim=True)
    cos2 = ((F.normalize(r, dim=-1) * geo.normal).sum(-1) ** 2).mean().item()
    along = {"residual": r, "boundary": geo.normal * r_norm}
    base_ce = readout_token_stats(readout, x, tokens, head=head)[1]
    units = [F.normalize(torch.randn(x.shape, generator=generator).to(x), dim=-1) for _ in range(isotropic_draws)]
    # every perturbation is x + f * delta: the isotropic draws (norm-matched), then the structured directions
    deltas = [r_norm * u for u in units] + [along[d] for d in directions]
    stats = _perturbation_stats(readout, x, tokens, deltas, f_grid, head)
    n_trials = tokens.numel() * isotropic_draws
    rows = {f"{d}/{kind}": ([], [], [], []) for d in directions for kind in responses}
    for f in f_grid:
        got = [_responses(*stats[(i, f)], tokens, base_ce) for i in range(len(deltas))]
        iso = {kind: sum(g[kind] for g in got[:isotropic_draws]) for kind in responses}
        for j, d in enumerate(directions):
            for kind in responses:
                s, i = got[isotropic_draws + j][kind], iso[kind] / isotropic_draws
                # flip: no isotropic flip at all -> a lower bound with one flip in all trials as denominator;
                # CE: an isotropic mean change <= 0 leaves the ratio undefined (nan), never a bound
                bounded = kind == "flip" and i <= 0 < s
                structured, isotropic, ratio, bound = rows[f"{d}/{kind}"]
                structured.append(s)
                isotropic.append(i)
                bound.append(bounded)
                ratio.append(s / i if i > 0 else (s * n_trials if bounded else float("nan")))
    return {name: DabiCurve(f=list(f_grid), structured=st, isotropic=iso_, ratio=ra, lower_bound=lb,
                            response=name.split("/")[1], alignment_cos2=cos2, isotropic_cos2=1.0 / x.shape[-1],
                            extras={"direction": name.split("/")[0]})
            for name, (st, iso_, ra, lb) in rows.items()}


def dabi_curve(readout: Callable[[Tensor], Tensor], x: Tensor, r: Tensor, *, direction: str = "residual",
               response_kind: str = "flip", f_grid: Sequence[float] = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0),
               isotropic_draws: int = 8, generator: torch.Generator | None = None) -> DabiCurve:
    """One curve of :func:`dabi_curves`."""
    return dabi_curves(readout, x, r, directions=(direction,), responses=(response_kind,), f_grid=f_grid,
                       isotropic_draws=isotropic_draws, generator=generator)[f"{direction}/{response_kind}"]


@torch.no_grad()
def mse_dabi_curve(decode: Callable[[Tensor], Tensor], x: Tensor, r: Tensor, *,
                   f_grid: Sequence[float] = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0), isotropic_draws: int = 8,
                   generator: torch.Generator | None = None) -> DabiCurve:
    """DABI of a continuous decoder (the smooth control, docs/diagnostics.md) with the MSE response
    ``R(x') = mean |decode(x') - decode(x)|^2``; ``r`` is the structured direction (the terminal
    residual) and the isotropic directions are norm-matched per latent position, as for text."""
    base = decode(x).float()
    r_norm = r.norm(dim=-1, keepdim=True)
    units = [F.normalize(torch.randn(x.shape, generator=generator).to(x), dim=-1) for _ in range(isotropic_draws)]

    def mse(delta: Tensor) -> float:
        return float((decode(x + delta).float() - base).pow(2).mean())

    structured, isotropic, ratio = [], [], []
    for f in f_grid:
        s = mse(f * r)
        iso = sum(mse(f * r_norm * u) for u in units) / isotropic_draws
        structured.append(s)
        isotropic.append(iso)
        ratio.append(s / iso if iso > 0 else float("nan"))
    return DabiCurve(f=list(f_grid), structured=structured, isotropic=isotropic, ratio=ratio,
                     lower_bound=[False] * len(ratio), response="mse", alignment_cos2=float("nan"),
                     isotropic_cos2=1.0 / x.shape[-1], extras={"direction": "residual"})
