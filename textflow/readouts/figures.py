"""The DABI-versus-f figure, shared by the parallel and the continuous readouts' diagnostics
(docs/diagnostics.md)."""

from __future__ import annotations

from pathlib import Path

from textflow.plots import finish, new_axes


def plot_dabi(dabi: dict[str, dict], dabi_k: int, path: Path, *, loggers=(), step: int = 0) -> Path:
    """``dabi`` maps ``direction/response`` to a curve (``f``, ``ratio``, ``lower_bound``); lower bounds
    (no isotropic response) are marked with open triangles."""
    fig, ax = new_axes()
    for name, c in dabi.items():
        line, = ax.plot(c["f"], c["ratio"], marker="o", label=name)
        bounds = [(f, v) for f, v, lb in zip(c["f"], c["ratio"], c["lower_bound"]) if lb]
        if bounds:  # isotropic response was 0: the point is a lower bound
            ax.plot(*zip(*bounds), ls="none", marker="^", ms=10, mfc="none", color=line.get_color())
    ax.axhline(1.0, color="k", lw=1, ls="--", label="isotropic = 1 (^ = lower bound)")
    ax.set_yscale("log")
    ax.set_xlabel("f (perturbation scale)")
    ax.set_ylabel(f"DABI (structured / isotropic), K={dabi_k}")
    return finish(fig, ax, path, key="diag/dabi_vs_f", loggers=loggers, step=step)
