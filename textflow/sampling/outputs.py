"""A sampling run's report and its publication: files written as one unit tied by one run id
(:func:`textflow.runs.outputs.write_run_outputs`), figures, loggers, the printout.

The readout kind fills a :class:`~textflow.readouts.sample_report.SampleReport` (:meth:`textflow.readouts.ReadoutKind.report_samples`);
:func:`publish` does the same with every kind's. On the dashboards (docs/dashboards.md) the run is one run
named by the sampler's label, with its settings as config, its metrics as summary, its text table and its
figures; the points of a ``sample.py -m`` sweep share one group, the sweep folder's name.
"""

from __future__ import annotations

from pathlib import Path

from textflow.cli import in_multirun
from textflow.dashboards import log_text_table
from textflow.dashboards.images import log_image_files
from textflow.dashboards.runs import close_loggers, open_loggers
from textflow.dashboards.summary import log_run_summary, numeric_summary
from textflow.io import json_text, jsonl_text
from textflow.readouts.sample_report import SampleReport
from textflow.runs.outputs import new_run_id, write_run_outputs

# what was run, beside the sampler's own settings: the dashboards' config (filter and group by these)
RUN_SETTINGS = ("label", "ckpt_path", "seed", "seq_len", "readout_feed", "judge", "judge_dtype", "device")


def run_settings(report: SampleReport) -> dict:
    """The run's config for the dashboards: the sampler block of metrics.json (name, K, time grid, gamma
    and the other knobs, as the sweep report's columns), the checkpoint, seed, number of samples, judge."""
    metrics = report.metrics
    settings = {"sampler": dict(metrics.get("sampler") or {})}
    settings.update({k: metrics[k] for k in RUN_SETTINGS if k in metrics})
    if report.rows is not None:
        settings["num_samples"] = len(report.rows)
    return settings


def run_summary(report: SampleReport) -> dict[str, float]:
    """The run's numbers for the dashboards, as ``sample/<key>``: every metric of metrics.json, the reference
    rows' as ``sample/reference/<row>/<key>`` and intervals as ``_lo``/``_hi``; the settings are config."""
    measured = {k: v for k, v in report.metrics.items() if k != "sampler" and k not in RUN_SETTINGS}
    return numeric_summary(measured, prefix="sample/")


def sweep_group() -> str | None:
    """The sweep folder's name when this run is a point of ``sample.py -m`` (read from Hydra's runtime;
    the same name :class:`textflow.sampling.report.ReportCallback` gives the report run); else None."""
    if not in_multirun():
        return None
    from hydra.core.hydra_config import HydraConfig

    return Path(str(HydraConfig.get().sweep.dir)).name


def publish(report: SampleReport, *, out_dir: Path, logger_cfg, label: str) -> None:
    """Write, draw, log and print ``report`` (the sampler's ``label`` names its dashboard run)."""
    run_id = report.metrics["run_id"] = new_run_id()  # ties samples.jsonl to metrics.json
    files = {}
    if report.rows is not None:
        files["samples.jsonl"] = jsonl_text([{"run_id": run_id, **row} for row in report.rows])
    files["metrics.json"] = json_text(report.metrics) + "\n"
    write_run_outputs(out_dir, files, run_id=run_id)
    images = {}
    for name, draw in report.figures.items():
        draw(out_dir / name)
        images[f"sample/{Path(name).stem}"] = out_dir / name
    loggers = open_loggers(logger_cfg, run_name=label, group=sweep_group(), job_type="sample")
    try:
        log_run_summary(loggers, params=run_settings(report), summary=run_summary(report))
        if report.text_table is not None:
            log_text_table(loggers, "sample/texts", ["index", "text"], report.text_table)
        log_image_files(loggers, images)
    finally:
        close_loggers(loggers)  # a sweep's next point (same process) starts its own wandb run
    report.show()
    print(f"[textflow] wrote {out_dir / report.samples_file} and {out_dir / 'metrics.json'}")
