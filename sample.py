"""Sample a trained checkpoint: ``python sample.py ckpt_path=CKPT sampler=sde sampler.steps=4``.

The run itself lives in :mod:`textflow.sampling.run`; this file checks the command line
(:mod:`textflow.cli.preflight`) and hands the composed config to it. ``-m`` sweeps give each run its
own folder and end with the sweep report (:mod:`textflow.sampling.report`). ``main`` returns the run's
objective (:mod:`textflow.sampling.objective`), which ``-m hydra/sweeper=sampler_study`` minimises
(docs/samplers.md, "Tuning samplers with Optuna").
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import hydra
from omegaconf import DictConfig

from textflow.allocator import keep_freed_memory
from textflow.cli import guarded
from textflow.cli.preflight import preflight
from textflow.io import atomic_write_json
from textflow.sampling.objective import FAILED, in_study, scored_run
from textflow.sampling.run import run

__all__ = ["main", "run"]


@hydra.main(version_base="1.3", config_path="conf", config_name="sample")
def main(cfg: DictConfig) -> float | None:
    """One sampling run; returns its objective (outside a study, None for an unjudged or failed run)."""
    def record(message: str) -> None:  # a failed sweep point leaves its reason in its folder
        atomic_write_json(Path(cfg.dirs.output_dir) / "error.json", {"error": message})

    study = in_study()
    value = guarded(partial(scored_run, run=run, study=study), cfg, on_sweep_error=record)
    return FAILED if study and value is None else value  # a failed trial: the worst value, the study goes on


if __name__ == "__main__":
    preflight(Path(__file__).resolve().parent / "conf", "sample")  # bad overrides: one line, exit 2
    keep_freed_memory()  # glibc keeps freed tensors' pages (textflow/allocator.py)
    main()
