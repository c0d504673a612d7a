"""Send metrics, text tables and figures to whichever Lightning loggers a run has configured.

CSV has no text or image channel (samples.jsonl and PNG files cover it); TensorBoard gets
``add_text`` / ``add_figure``; wandb gets ``log_text`` / ``log_image`` (Lightning's ``WandbLogger`` API, so
every wandb record carries ``trainer/global_step``). Anything else is skipped. How a sampling study
reaches the dashboards (one run per sweep point, a report run per sweep) is in docs/dashboards.md; the
modules beside this one hold those parts: :mod:`textflow.dashboards.runs` (open and close a run),
:mod:`textflow.dashboards.summary` (config and summary metrics), :mod:`textflow.dashboards.images`
(PNG files) and :mod:`textflow.dashboards.sweep` (the sweep report's table).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def kind_of(logger) -> str:
    """``WandbLogger``, ``TensorBoardLogger``, ``CSVLogger`` or the class name: the first Lightning
    logger class in the logger's ancestry, so subclasses (``AppendingCSVLogger``) count as their base."""
    names = [cls.__name__ for cls in type(logger).__mro__]
    return next((n for n in ("WandbLogger", "TensorBoardLogger", "CSVLogger") if n in names), names[0])


def markdown_cell(value) -> str:
    """One cell of a markdown table: newlines as spaces, ``|`` escaped."""
    return str(value).replace("\n", " ").replace("|", "\\|")


def log_text_table(loggers: Iterable, key: str, columns: Sequence[str], rows: Sequence[Sequence],
                   step: int = 0):
    """One table of text: a wandb Table, or a markdown table in TensorBoard's text tab."""
    for logger in loggers:
        kind = kind_of(logger)
        if kind == "WandbLogger":
            logger.log_text(key=key, columns=list(columns), data=[list(map(str, r)) for r in rows], step=step)
        elif kind == "TensorBoardLogger":
            header = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
            body = "".join("| " + " | ".join(markdown_cell(c) for c in r) + " |\n" for r in rows)
            logger.experiment.add_text(key, header + body, global_step=step)


def log_figure(loggers: Iterable, key: str, figure, step: int = 0):
    """A matplotlib figure: ``add_figure`` in TensorBoard, an image through ``WandbLogger.log_image``."""
    for logger in loggers:
        kind = kind_of(logger)
        if kind == "WandbLogger":
            logger.log_image(key=key, images=[figure], step=step)
        elif kind == "TensorBoardLogger":
            logger.experiment.add_figure(key, figure, global_step=step, close=False)


def log_metrics(loggers: Iterable, metrics: dict, step: int = 0):
    """The numeric entries of ``metrics`` to every logger, then flush."""
    for logger in loggers:
        logger.log_metrics({k: v for k, v in metrics.items() if isinstance(v, (int, float))}, step=step)
        logger.save()
