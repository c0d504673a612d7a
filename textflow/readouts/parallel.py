"""The sharp categorical readout that decodes every position at once (``embed``, ``vae``,
``frozen_embed``): the paper's non-committing text readout (arXiv 2606.30705; docs/diagnostics.md).

Its diagnostics, on held-out token blocks: clean readout accuracy and CE, the tube law of the clean
latents' geometric margins, the oracle roll-in flip rate at the terminal time of K-step samplers against
s(t) (with ``curves``, at every step of each K's grid), DABI at the ``steps[0]`` terminal residual
(directions ``residual`` and ``boundary``, responses ``flip`` and ``ce``) with the residual's alignment to
the boundary normal, and its row-space fraction. Every noise draw comes from a named stream
(:mod:`textflow.noise`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Optional, Sequence

import torch

from textflow.diagnostics.boundary import boundary_geometry
from textflow.diagnostics.dabi import F_GRID, dabi_curves
from textflow.diagnostics.rollin import curve_spread, flip_curve, oracle_flip_rate, terminal_residual, terminal_time
from textflow.diagnostics.rowspace import visible_basis, visible_fraction
from textflow.diagnostics.tube import tube_law
from textflow.kernels import readout_token_stats
from textflow.noise import stream_generator
from textflow.readouts.base import MONITOR_DABI_DRAWS, MONITOR_DABI_F, STEPS, DiagnosticsResult
from textflow.readouts.text import TextReadout


@dataclass
class ParallelDiagnostics(DiagnosticsResult):
    """The parallel readout's diagnostics; parts switched off are ``None`` (and absent from ``as_dict``)."""

    blocks: int
    seq_len: int
    latent_dim: int
    clean_readout_acc: float
    clean_readout_ce: float
    tube: dict  # density_at_zero, median_margin of the clean latents' geometric margins
    flip: Optional[list[dict]] = None  # per K: K, t, s, observed_flip, predicted_flip, predicted_flip_tail
    flip_curves: Optional[dict[str, list[dict]]] = None  # K -> rows (t, s, flip) at every step of its grid
    flip_curve_spread: Optional[dict] = None
    dabi: Optional[dict[str, dict]] = None  # "direction/response" -> f, ratio, structured, isotropic, lower_bound
    dabi_K: Optional[int] = None
    alignment_cos2: Optional[float] = None
    isotropic_cos2: Optional[float] = None
    row_space: Optional[dict] = None  # residual, isotropic
    checkpoint: Optional[str] = None

    def as_dict(self) -> dict:
        return self._keyed({f.name: getattr(self, f.name) for f in fields(self)
                            if f.name != "checkpoint" and getattr(self, f.name) is not None})

    def scalars(self) -> dict[str, float]:
        """f = 1 DABI values, flip rates with both tube-law predictions, tube density, alignment, row space."""
        out = {"diag/clean_readout_acc": self.clean_readout_acc, "diag/clean_readout_ce": self.clean_readout_ce,
               "diag/p_m0": self.tube["density_at_zero"]}
        for row in self.flip or []:
            out[f"diag/flip_K{row['K']}"] = row["observed_flip"]
            out[f"diag/tube_pred_K{row['K']}"] = row["predicted_flip"]
            out[f"diag/tube_tail_K{row['K']}"] = row["predicted_flip_tail"]
        for name, c in (self.dabi or {}).items():
            i = min(range(len(c["f"])), key=lambda j: abs(c["f"][j] - 1.0))
            if c["ratio"][i] == c["ratio"][i]:  # skip 0 / 0
                out[f"diag/dabi_{name.replace('/', '_')}_f1"] = c["ratio"][i]
        if self.row_space is not None:
            out["diag/row_space_residual"] = self.row_space["residual"]
            out["diag/row_space_isotropic"] = self.row_space["isotropic"]
        if self.alignment_cos2 is not None:
            out["diag/alignment_cos2"], out["diag/isotropic_cos2"] = self.alignment_cos2, self.isotropic_cos2
        return out

    def figures(self, out_dir: Path, *, prefix: str = "", loggers=(), step: int = 0) -> list[Path]:
        """``dabi_vs_f.png`` and ``flip_vs_s.png`` (both need DABI and the flip rates)."""
        if self.dabi is None or self.flip is None:
            return []
        from textflow.plots import finish, new_axes
        from textflow.readouts.figures import plot_dabi

        paths = [plot_dabi(self.dabi, self.dabi_K, out_dir / f"{prefix}dabi_vs_f.png", loggers=loggers, step=step)]
        fig, ax = new_axes()
        for k, rows in (self.flip_curves or {}).items():  # every step of each K's grid
            ax.plot([r["s"] for r in rows], [r["flip"] for r in rows], marker=".", lw=1, alpha=0.7,
                    label=f"K={k}, every step")
        s = [row["s"] for row in self.flip]
        ax.plot(s, [row["observed_flip"] for row in self.flip], marker="o", label="observed (oracle roll-in)")
        ax.plot(s, [row["predicted_flip"] for row in self.flip], marker="x", ls="--", label="tube law (linear)")
        if all("predicted_flip_tail" in row for row in self.flip):
            ax.plot(s, [row["predicted_flip_tail"] for row in self.flip], marker="+", ls=":", label="margin tail")
        for row in self.flip:
            ax.annotate(f"K={row['K']}", (row["s"], row["observed_flip"]), fontsize=7)
        if self.flip_curves is not None:
            ax.set_xscale("log")
        ax.set_yscale("symlog", linthresh=1e-4)  # flip rates span 1e-4 .. 1; 0 stays on the axis
        ax.set_ylim(bottom=0.0)
        ax.set_xlabel("s(t) (noise-to-signal)")
        ax.set_ylabel("flip rate after one network call")
        paths.append(finish(fig, ax, out_dir / f"{prefix}flip_vs_s.png", key="diag/flip_vs_s", loggers=loggers,
                            step=step))
        return paths

    def markdown(self) -> str:
        lines = [f"# Diagnostics of `{self.checkpoint}`", "",
                 f"{self.blocks} held-out blocks of {self.seq_len} tokens; latent d = {self.latent_dim}; "
                 f"clean readout accuracy {self.clean_readout_acc:.4f}, CE {self.clean_readout_ce:.4f}.", "",
                 f"Geometric margins of the clean latents: median {self.tube['median_margin']:.4g}, "
                 f"p_m(0) = {self.tube['density_at_zero']:.4g}."]
        if self.flip is not None:
            lines += ["", "| K | t | s(t) | observed flip | tube law (linear) | observed / linear | margin tail | "
                      "observed / tail |", "|---|---|---|---|---|---|---|---|"]
            for row in self.flip:
                tail = row.get("predicted_flip_tail", float("nan"))
                lines.append(f"| {row['K']} | {row['t']:.4f} | {row['s']:.4f} | {row['observed_flip']:.4f} | "
                             f"{row['predicted_flip']:.4g} | {_ratio(row['observed_flip'], row['predicted_flip'])} | "
                             f"{tail:.4g} | {_ratio(row['observed_flip'], tail)} |")
        if self.flip_curve_spread is not None:
            sp = self.flip_curve_spread
            lines += ["", f"Flip-rate curves over every step of K = {', '.join(self.flip_curves)} against s(t): "
                      f"{sp['points']} points compared with the K = {sp['reference_K']} curve (interpolated in log s): "
                      f"|Δflip| median {sp['abs_median']:.4f}, max {sp['abs_max']:.4f}; relative median "
                      f"{sp['rel_median']:.3f}, max {sp['rel_max']:.3f}."]
        if self.dabi is not None:
            lines += ["", f"DABI at the K = {self.dabi_K} terminal residual "
                      f"(alignment cos²(r, n) = {self.alignment_cos2:.4f} vs isotropic {self.isotropic_cos2:.4f}; "
                      f"row-space fraction {self.row_space['residual']:.4f} vs isotropic "
                      f"{self.row_space['isotropic']:.4f}):", "",
                      "| direction / response | " + " | ".join(f"f={f}" for f in self._dabi_grid()) + " |",
                      "|---|" + "---|" * len(self._dabi_grid())]
            for name, c in self.dabi.items():
                cells = ["n/a" if v != v else ("≥ " if lb else "") + f"{v:.3g}"
                         for v, lb in zip(c["ratio"], c["lower_bound"])]
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"


    def _dabi_grid(self) -> list[float]:
        return next(iter(self.dabi.values()))["f"]


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.3g}" if b and b == b else "n/a"


@torch.no_grad()
def measure(den, ids: torch.Tensor, *, steps: Sequence[int] = STEPS, seed: int = 0, flip: bool = True,
            dabi: bool = True, f_grid=F_GRID, isotropic_draws: int = 8, curves: bool = False) -> ParallelDiagnostics:
    """All diagnostics of denoiser ``den`` on held-out token blocks ``ids`` (B, L); with ``curves``, also
    the oracle flip rate at every step of each K's grid and the curves' spread."""
    x = den.embed(ids)
    head = getattr(den, "readout_head", None)
    decoded, ce = readout_token_stats(den.readout, x, ids, head=head)
    geometry = boundary_geometry(den.readout, x, head=head)
    law = tube_law(geometry.geometric_margin)
    out = ParallelDiagnostics(blocks=len(ids), seq_len=ids.shape[1], latent_dim=x.shape[-1],
                              clean_readout_acc=float((decoded == ids).float().mean()),
                              clean_readout_ce=float(ce.mean()),
                              tube={"density_at_zero": law.density_at_zero, "median_margin": law.median_margin})
    if flip:
        out.flip = []
        for k in steps:
            t = terminal_time(k)
            s = float(den.path.noise_to_signal(torch.tensor(t)))
            observed = oracle_flip_rate(den, x, t, generator=stream_generator(seed, "diagnostics/terminal"),
                                        clean=geometry.tokens)
            out.flip.append({"K": k, "t": t, "s": s, "observed_flip": observed, "predicted_flip": law.predicted_flip(s),
                             "predicted_flip_tail": law.predicted_flip_tail(s)})
    if curves:
        # independent noise per K: on a uniform grid the K = 4 times are among the K = 16 times, and
        # with shared noise the curves would coincide exactly there by construction
        out.flip_curves = {str(k): flip_curve(den, x, k, generator=stream_generator(seed, "diagnostics/curve", k),
                                              clean=geometry.tokens) for k in steps}
        out.flip_curve_spread = curve_spread({int(k): rows for k, rows in out.flip_curves.items()})
    if dabi:
        k0 = steps[0]
        r = terminal_residual(den, x, terminal_time(k0), generator=stream_generator(seed, "diagnostics/terminal"))
        curves = dabi_curves(den.readout, x, r, f_grid=f_grid, isotropic_draws=isotropic_draws, geometry=geometry,
                             head=head,
                             generator=stream_generator(seed, "diagnostics/isotropic"))
        out.dabi_K = k0
        out.dabi = {name: {"f": c.f, "ratio": c.ratio, "structured": c.structured, "isotropic": c.isotropic,
                           "lower_bound": c.lower_bound} for name, c in curves.items()}
        first = next(iter(curves.values()))
        out.alignment_cos2, out.isotropic_cos2 = first.alignment_cos2, first.isotropic_cos2
        iso = torch.randn(x.shape, generator=stream_generator(seed, "diagnostics/row_space")).to(x)
        basis = visible_basis(den.readout, x, head=head)
        out.row_space = {"residual": visible_fraction(basis, r), "isotropic": visible_fraction(basis, iso)}
    return out


class ParallelReadout(TextReadout):
    """Logits for every position in one call; nothing is committed before the final readout (CCI 0)."""

    name = "parallel"

    def diagnose(self, denoiser, data, *, steps=STEPS, seed=0) -> ParallelDiagnostics:
        """Everything, with the flip-rate curves over every step of each K."""
        return measure(denoiser, data, steps=steps, seed=seed, curves=True)

    def monitor(self, denoiser, data, *, steps=STEPS, seed=0, flip=True, dabi=True, ablation=True,
                dabi_f=MONITOR_DABI_F, dabi_draws=MONITOR_DABI_DRAWS) -> ParallelDiagnostics:
        """Clean readout and tube law, plus the flip rates (``flip``) and DABI (``dabi``, on ``dabi_f``)."""
        return measure(denoiser, data, steps=steps, seed=seed, flip=flip, dabi=dabi, f_grid=tuple(dabi_f),
                       isotropic_draws=dabi_draws)
