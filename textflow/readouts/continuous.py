"""The smooth, non-categorical control: a continuous decoder (``smooth``, 8x8 digit images) whose
outputs are reconstructions, not tokens (arXiv 2606.30705; docs/diagnostics.md, "The smooth
control: DABI ≈ 1"; docs/autoencoders.md).

Without tokens there is no flip rate, tube law or decision boundary: its diagnostic is DABI with the MSE
response at each K's terminal residual, which the paper expects near 1. Its samples are reported with
continuous image metrics against held-out images (:mod:`textflow.evaluation.images`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch
from torch import Tensor

from textflow.diagnostics.dabi import F_GRID, mse_dabi_curve
from textflow.diagnostics.rollin import terminal_residual, terminal_time
from textflow.noise import stream_generator
from textflow.readouts.base import MONITOR_DABI_DRAWS, MONITOR_DABI_F, STEPS, DiagnosticsResult, ReadoutKind


@dataclass
class ContinuousDiagnostics(DiagnosticsResult):
    blocks: int
    seq_len: int
    latent_dim: int
    clean_recon_mse: float
    dabi_by_K: dict[str, dict]  # K -> f, ratio, structured, isotropic, lower_bound, residual_rms
    dabi_K: int  # the K whose curve is ``dabi`` (the first)
    checkpoint: Optional[str] = None

    @property
    def dabi(self) -> dict[str, dict]:
        return {"residual/mse": self.dabi_by_K[str(self.dabi_K)]}

    def as_dict(self) -> dict:
        return self._keyed({"blocks": self.blocks, "seq_len": self.seq_len, "latent_dim": self.latent_dim,
                            "continuous": True, "clean_recon_mse": self.clean_recon_mse,
                            "dabi_by_K": self.dabi_by_K, "dabi_K": self.dabi_K, "dabi": self.dabi})

    def scalars(self) -> dict[str, float]:
        """``diag/clean_recon_mse`` and ``diag/dabi_residual_mse_K<k>_f1``."""
        return {"diag/clean_recon_mse": self.clean_recon_mse,
                **{f"diag/dabi_residual_mse_K{k}_f1": c["ratio"][_nearest(c["f"], 1.0)] for k, c in self.dabi_by_K.items()}}

    def figures(self, out_dir: Path, *, prefix: str = "", loggers=(), step: int = 0) -> list[Path]:
        """``dabi_vs_f.png`` at ``dabi_K``."""
        from textflow.readouts.figures import plot_dabi

        return [plot_dabi(self.dabi, self.dabi_K, out_dir / f"{prefix}dabi_vs_f.png", loggers=loggers, step=step)]

    def markdown(self) -> str:
        grid = next(iter(self.dabi_by_K.values()))["f"]
        lines = [f"# Diagnostics of `{self.checkpoint}` (continuous decoder)", "",
                 f"{self.blocks} held-out examples, {self.seq_len} latent positions of d = {self.latent_dim}; "
                 f"clean reconstruction MSE {self.clean_recon_mse:.5f}.", "",
                 "DABI with the MSE response at each K's terminal residual (structured / norm-matched isotropic):", "",
                 "| K | residual RMS | " + " | ".join(f"f={f}" for f in grid) + " |",
                 "|---|---|" + "---|" * len(grid)]
        for k, c in self.dabi_by_K.items():
            lines.append(f"| {k} | {c['residual_rms']:.4f} | " + " | ".join(f"{v:.3g}" for v in c["ratio"]) + " |")
        return "\n".join(lines) + "\n"


def _nearest(grid: list[float], f: float) -> int:
    return min(range(len(grid)), key=lambda i: abs(grid[i] - f))


class ContinuousReadout(ReadoutKind):
    """``decode`` is the reconstruction itself (float pixels); nothing is committed (CCI 0)."""

    name = "continuous"
    decodes_tokens = False

    def decode(self, denoiser, latents: Tensor) -> Tensor:
        return denoiser.readout(latents).float()

    def heldout(self, loaded, *, blocks: int) -> Tensor:
        """The first ``blocks`` held-out images of the checkpoint's data."""
        from hydra.utils import instantiate

        return instantiate(loaded.config.data).images("val")[:blocks]

    @torch.no_grad()
    def diagnose(self, denoiser, data, *, steps: Sequence[int] = STEPS, seed: int = 0,
                 f_grid=F_GRID, isotropic_draws: int = 8) -> ContinuousDiagnostics:
        """DABI with the MSE response at each K's terminal residual (the paper expects ≈ 1 here)."""
        x = denoiser.embed(data)
        by_k = {}
        clean_mse = float((denoiser.readout(x).float() - data.float()).pow(2).mean())
        for k in steps:
            noise = stream_generator(seed, "diagnostics/terminal")
            r = terminal_residual(denoiser, x, terminal_time(k), generator=noise)
            c = mse_dabi_curve(denoiser.readout, x, r, f_grid=f_grid, isotropic_draws=isotropic_draws,
                               generator=stream_generator(seed, "diagnostics/isotropic"))
            by_k[str(k)] = {"f": c.f, "ratio": c.ratio, "structured": c.structured, "isotropic": c.isotropic,
                            "lower_bound": c.lower_bound, "residual_rms": float(r.pow(2).mean().sqrt())}
        return ContinuousDiagnostics(blocks=len(data), seq_len=x.shape[1], latent_dim=x.shape[-1],
                                     clean_recon_mse=clean_mse, dabi_by_K=by_k, dabi_K=steps[0])

    def monitor(self, denoiser, data, *, steps=STEPS, seed=0, flip=True, dabi=True, ablation=True,
                dabi_f=MONITOR_DABI_F, dabi_draws=MONITOR_DABI_DRAWS) -> Optional[ContinuousDiagnostics]:
        """:meth:`diagnose` on the scales ``dabi_f``; None without ``dabi`` (its only diagnostic)."""
        if not dabi:
            return None
        return self.diagnose(denoiser, data, steps=steps, seed=seed, f_grid=tuple(dabi_f), isotropic_draws=dabi_draws)

    def report_samples(self, run, generation, recorder=None):
        """Image metrics against held-out images (and training images as the reference row), a PNG grid."""
        from textflow.readouts.image_samples import report_images

        return report_images(run, generation)
