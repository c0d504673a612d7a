"""One-command diagnostics report for a checkpoint (arXiv 2606.30705; docs/diagnostics.md, "One
command"):

    python -m textflow.diagnostics CKPT [--out DIR] [--blocks 64] [--steps 4 8 16]

On held-out data of the checkpoint's own corpus, everything its readout kind measures
(:mod:`textflow.readouts`): for a parallel text readout the clean readout accuracy and CE, the
oracle roll-in flip rate at the terminal time of K-step samplers (and at every step of their grids)
against s(t) with the tube-law prediction, and DABI at the K = steps[0] terminal residual with the
residual's alignment to the boundary normal; for an AR decoder its structural CCI and the commit
ablation; for a continuous decoder (the smooth control) DABI with the MSE response at each K. The CLI
(:mod:`textflow.diagnostics.cli`) writes the result's ``as_dict()`` as ``diagnostics.json``, its
``markdown()`` as ``diagnostics.md`` and its ``figures()``. Every noise draw comes from a named hashed
stream (:mod:`textflow.noise`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from textflow.checkpoint import load_run

if TYPE_CHECKING:  # the kinds sit above the diagnostics library they call (docs/architecture.md)
    from textflow.readouts import DiagnosticsResult


def diagnose(ckpt: str, *, blocks: int = 64, steps: Sequence[int] = (4, 8, 16), seed: int = 0) -> "DiagnosticsResult":
    """The checkpoint's readout kind diagnoses its denoiser on ``blocks`` held-out examples."""
    loaded = load_run(ckpt)
    kind = loaded.module.net["autoencoder"].readout_kind
    data = kind.heldout(loaded, blocks=blocks)
    result = kind.diagnose(loaded.denoiser(), data, steps=tuple(steps), seed=seed)
    result.checkpoint = str(ckpt)
    return result
