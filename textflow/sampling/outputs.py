"""A sampling run's report and its publication: files written as one unit tied by one run id
(:func:`textflow.runs.outputs.write_run_outputs`), figures, loggers, the printout.

The readout kind fills a :class:`~textflow.readouts.sample_report.SampleReport` (:meth:`textflow.readouts.ReadoutKind.report_samples`);
:func:`publish` does the same with every kind's.
"""

from __future__ import annotations

from pathlib import Path

from textflow.cli import instantiate_dict
from textflow.dashboards import log_metrics, log_text_table
from textflow.io import json_text, jsonl_text
from textflow.readouts.sample_report import SampleReport
from textflow.runs.outputs import new_run_id, write_run_outputs


def publish(report: SampleReport, *, out_dir: Path, logger_cfg, label: str) -> None:
    """Write, draw, log and print ``report`` (the sampler's ``label`` names its text table)."""
    run_id = report.metrics["run_id"] = new_run_id()  # ties samples.jsonl to metrics.json
    files = {}
    if report.rows is not None:
        files["samples.jsonl"] = jsonl_text([{"run_id": run_id, **row} for row in report.rows])
    files["metrics.json"] = json_text(report.metrics) + "\n"
    write_run_outputs(out_dir, files, run_id=run_id)
    for name, draw in report.figures.items():
        draw(out_dir / name)
    loggers = instantiate_dict(logger_cfg)
    log_metrics(loggers, {f"sample/{k}": v for k, v in report.metrics.items() if isinstance(v, (int, float))})
    if report.text_table is not None:
        log_text_table(loggers, f"samples/{label}", ["index", "text"], report.text_table)
    report.show()
    print(f"[textflow] wrote {out_dir / report.samples_file} and {out_dir / 'metrics.json'}")
