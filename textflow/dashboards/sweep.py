"""The sweep report's own dashboard run (docs/dashboards.md).

At the end of ``sample.py -m`` the sweep report (:mod:`textflow.sampling.report`) has written ``report.csv``
and its figures (metric-vs-K, metric-vs-gamma, quality against injected noise, the perplexity-entropy
plane) into the sweep folder. :func:`publish_sweep_report` sends them to one more run in the points'
group, named ``sweep_report``: the report table (a typed wandb Table; a markdown table in TensorBoard's
text tab) and every figure under ``report/<figure name>``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from textflow.dashboards import kind_of, log_text_table
from textflow.dashboards.images import log_image_files
from textflow.dashboards.runs import close_loggers, open_loggers
from textflow.dashboards.summary import log_run_summary

REPORT_RUN = "sweep_report"


def _number(text: str):
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def typed_columns(columns: list[str], rows: list[dict]) -> list[list]:
    """Rows of a CSV read back with one type per column: numbers where every filled cell of the column is
    a number, text otherwise, ``None`` for empty cells (a wandb Table refuses mixed columns)."""
    numeric = {c: all(_number(r[c]) is not None for r in rows if r.get(c)) for c in columns}
    return [[(_number(r[c]) if numeric[c] else r[c]) if r.get(c) else None for c in columns] for r in rows]


def publish_sweep_report(nodes, *, sweep_dir: str | Path, report_csv: str | Path,
                         figures: Iterable[str | Path], key: str = "report/table") -> None:
    """Open the loggers of ``nodes`` (the sweep's ``logger`` config) in ``sweep_dir`` as the run
    ``sweep_report`` in the group ``sweep_dir``'s name, log ``report_csv`` (one row per run and reference
    row) under ``key``, each PNG in ``figures`` under ``report/<its name>``, the sweep folder as config and
    its number of runs as ``report/runs``; then close the run."""
    sweep_dir, report_csv = Path(sweep_dir), Path(report_csv)
    with report_csv.open(newline="") as fh:
        reader = csv.DictReader(fh)
        columns, rows = list(reader.fieldnames or []), list(reader)
    runs = sum(1 for r in rows if r.get("run"))  # reference rows have no run folder
    loggers = open_loggers(nodes, run_name=REPORT_RUN, group=sweep_dir.name, job_type="report",
                           save_dir=sweep_dir)
    try:
        log_run_summary(loggers, params={"sweep_dir": str(sweep_dir)}, summary={"report/runs": float(runs)})
        for logger in loggers:
            if kind_of(logger) == "WandbLogger":
                logger.log_table(key=key, columns=columns, data=typed_columns(columns, rows), step=0)
        log_text_table([lg for lg in loggers if kind_of(lg) == "TensorBoardLogger"], key, columns,
                       [[r.get(c) or "" for c in columns] for r in rows])
        log_image_files(loggers, {f"report/{Path(p).stem}": p for p in figures})
    finally:
        close_loggers(loggers)
