"""Send text tables and figures to whichever Lightning loggers a run has configured.

CSV has no text or image channel (samples.jsonl and PNG files cover it); TensorBoard gets
``add_text`` / ``add_figure``; wandb gets ``log_text`` / ``log_image``. Anything else is skipped.
"""

from __future__ import annotations

from typing import Iterable, Sequence


def _kind(logger) -> str:
    return type(logger).__name__


def log_text_table(loggers: Iterable, key: str, columns: Sequence[str], rows: Sequence[Sequence], step: int = 0):
    for logger in loggers:
        kind = _kind(logger)
        if kind == "WandbLogger":
            logger.log_text(key=key, columns=list(columns), data=[list(map(str, r)) for r in rows], step=step)
        elif kind == "TensorBoardLogger":
            header = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
            body = "".join("| " + " | ".join(str(c).replace("\n", " ").replace("|", "\\|") for c in r) + " |\n"
                           for r in rows)
            logger.experiment.add_text(key, header + body, global_step=step)


def log_figure(loggers: Iterable, key: str, figure, step: int = 0):
    for logger in loggers:
        kind = _kind(logger)
        if kind == "WandbLogger":
            import wandb

            logger.experiment.log({key: wandb.Image(figure)}, step=step)
        elif kind == "TensorBoardLogger":
            logger.experiment.add_figure(key, figure, global_step=step)


def log_metrics(loggers: Iterable, metrics: dict, step: int = 0):
    for logger in loggers:
        logger.log_metrics({k: v for k, v in metrics.items() if isinstance(v, (int, float))}, step=step)
        logger.save()
