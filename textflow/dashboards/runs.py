"""Open and close one dashboard run (docs/dashboards.md).

A sampling run, or one point of a ``sample.py -m`` sweep, is one run on every dashboard: wandb names it by
the sampler's label and puts every point of a sweep (and the sweep's report run) in one group, the sweep
folder's name, so wandb's run table and grouped panels compare the points. The basic launcher runs every
point in one process, so each run is finished when its point ends; otherwise wandb would hand the next
point's logger the same run.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from textflow.dashboards import kind_of


def _class_names(target: str) -> set[str]:
    from hydra.utils import get_class

    return {cls.__name__ for cls in get_class(target).__mro__}


def open_loggers(nodes, *, run_name: str, group: str | None = None, job_type: str | None = None,
                 save_dir: str | Path | None = None) -> list:
    """Instantiate every logger config in ``nodes`` (the ``logger`` node: name -> config with a ``_target_``).

    wandb loggers are named ``run_name``; ``group`` and ``job_type`` fill in what the config leaves null
    (``logger.wandb.group=...`` on the command line wins). ``save_dir``, when given, replaces every logger's
    folder (the sweep report writes into the sweep folder)."""
    from hydra.utils import instantiate
    from omegaconf import DictConfig

    loggers = []
    for node in (nodes or {}).values():
        if not isinstance(node, DictConfig) or "_target_" not in node:
            continue
        extra = {} if save_dir is None else {"save_dir": str(save_dir)}
        if "WandbLogger" in _class_names(node._target_):
            extra["name"] = run_name
            for key, value in (("group", group), ("job_type", job_type)):
                if value is not None and node.get(key) is None:
                    extra[key] = value
        loggers.append(instantiate(node, **extra))
    return loggers


def close_loggers(loggers: Iterable) -> None:
    """Flush and finalize every logger; finish wandb runs, so that the next run in this process is a new
    one."""
    loggers = list(loggers)
    for logger in loggers:
        logger.save()
        logger.finalize("success")
    finish_wandb_runs(loggers)


def finish_wandb_runs(loggers: Iterable) -> None:
    """Finish the wandb run of every wandb logger that started one (a logger that never logged starts
    none here). Lightning leaves a training run's wandb run open when ``fit`` ends; the next
    ``WandbLogger`` in the same process (a basic-launcher sweep of ``train.py -m``, a notebook, the
    tests) would otherwise log into it."""
    for logger in loggers:
        if kind_of(logger) == "WandbLogger" and getattr(logger, "_experiment", None) is not None:
            logger.experiment.finish()
