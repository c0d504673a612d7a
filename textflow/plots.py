"""Figure helpers shared by reports and diagnostics: headless matplotlib, one look, PNG + dashboards."""

from __future__ import annotations

from pathlib import Path


def new_axes(figsize=(5.5, 3.6)):
    """A (figure, axes) pair on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize)


def finish(fig, ax, path: str | Path, *, key: str | None = None, loggers=(), step: int = 0) -> Path:
    """Legend, grid, save as PNG at ``path``, send to image-taking ``loggers`` under ``key``, close."""
    import matplotlib.pyplot as plt

    from textflow.dashboards import log_figure

    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    if key and loggers:
        log_figure(loggers, key, fig, step=step)
    plt.close(fig)
    return path
