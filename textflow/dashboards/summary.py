"""A run's settings and its summary metrics: the columns of the dashboards' comparison views
(docs/dashboards.md).

wandb gets the settings as the run config (filter and group the run table by sampler, K, gamma,
checkpoint, seed) and the metrics as history and run summary (the run table's metric columns); an offline
run keeps both in its ``run-<id>.wandb`` file until ``wandb sync``. TensorBoard gets both through
``log_hyperparams(params, metrics)``: the HParams tab lists one row per run with its settings and metrics. CSV writes ``hparams.yaml`` and the metrics row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from textflow.dashboards import kind_of


def numeric_summary(metrics: Mapping, *, prefix: str = "") -> dict[str, float]:
    """Every number in ``metrics`` as ``prefix + key``: nested blocks (``reference/heldout``) flattened with
    ``/``, a confidence interval ``[lo, hi]`` as ``key_lo`` and ``key_hi``, booleans as 0/1; text and
    longer lists (a trajectory) are left out."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, (bool, int, float)):
            out[name] = float(value)
        elif isinstance(value, Mapping):
            out.update(numeric_summary(value, prefix=f"{name}/"))
        elif (isinstance(value, (list, tuple)) and len(value) == 2
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
            out[f"{name}_lo"], out[f"{name}_hi"] = float(value[0]), float(value[1])
    return out


def log_run_summary(loggers: Iterable, *, params: dict, summary: dict[str, float], step: int = 0) -> None:
    """``params`` as every logger's hyperparameters and ``summary`` as its metrics at ``step`` (TensorBoard:
    both in one HParams record) and, on wandb, as the run summary."""
    for logger in loggers:
        kind = kind_of(logger)
        if kind == "TensorBoardLogger":
            logger.log_hyperparams(params, metrics=dict(summary), step=step)  # also logs the scalars
        else:
            logger.log_hyperparams(params)
            logger.log_metrics(dict(summary), step=step)
        if kind == "WandbLogger":
            logger.experiment.summary.update(dict(summary))
        logger.save()
