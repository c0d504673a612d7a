"""``python -m textflow.diagnostics CKPT --logger many``: the diagnostics report as one dashboard run
(docs/dashboards.md, "Training and the diagnostics command").

The run is named ``diagnostics`` (job type ``diagnostics``) and holds the checkpoint and the settings as
config, every scalar of ``diagnostics.json`` as summary metrics under ``diag/`` (clean readout, the tube
law's margins, each K's observed and predicted flip rate as ``diag/flip/K<k>/...``, the curves' spread,
the alignment and the row space), and every figure of the report (the DABI curves against f, flip rate
vs s(t), ...) as an image under ``diag/<figure name>``: a curve is a figure, not a summary number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from textflow.dashboards.images import log_image_files
from textflow.dashboards.runs import close_loggers, open_loggers
from textflow.dashboards.summary import log_run_summary, numeric_summary

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def logger_nodes(name: str, *, save_dir: str | Path):
    """The ``logger`` node of ``conf/logger/<name>.yaml`` (csv, tensorboard, wandb, many, none) with its
    folders under ``save_dir``, composed by Hydra as ``sample.py`` composes it (an unknown name is refused
    by Hydra with the list of options)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("sample", overrides=[f"logger={name}", f"dirs.output_dir={save_dir}"])
    return cfg.get("logger")


def per_k(result: Mapping) -> dict:
    """``result`` with each list of per-K rows (``flip``: one row per K) keyed by ``K<k>``, so that its
    numbers reach the summary."""
    return {key: ({f"K{row['K']}": row for row in value}
                  if isinstance(value, list) and value and all(isinstance(r, Mapping) and "K" in r for r in value)
                  else value) for key, value in result.items()}


def publish_diagnostics(name: str, *, out_dir: str | Path, params: Mapping, result: Mapping,
                        figures: Iterable[str | Path]) -> None:
    """Send one diagnostics report (``result``: the ``diagnostics.json`` dict, ``figures``: its PNGs) to
    the loggers of ``conf/logger/<name>.yaml``, written under ``out_dir``."""
    loggers = open_loggers(logger_nodes(name, save_dir=out_dir), run_name="diagnostics", job_type="diagnostics",
                           save_dir=out_dir)
    try:
        log_run_summary(loggers, params=dict(params), summary=numeric_summary(per_k(result), prefix="diag/"))
        log_image_files(loggers, {f"diag/{Path(p).stem}": p for p in figures})
    finally:
        close_loggers(loggers)
