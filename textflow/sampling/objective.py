"""The number a sampler study minimises (docs/samplers.md, "Tuning samplers with Optuna").

``sample.py``'s ``main`` returns, for a judged run,

    objective = ln(gen_ppl) + penalty * max(0, |H - H_heldout| - entropy_tolerance)

with ``gen_ppl`` the samples' judge perplexity, ``H`` their unigram entropy (nats) and ``H_heldout`` the
held-out text's unigram entropy from the same run (its ``reference/heldout`` row, same count and length).
Inside the band ``H_heldout +- entropy_tolerance`` points are ranked by ln gen-PPL alone; every nat
beyond it costs ``penalty`` (in units of ln gen-PPL), so a sampler cannot win by collapsing onto a few
likely tokens (gen-PPL is only read with entropy: arXiv 2606.30705 reports ELF's K = 1 ODE at gen-PPL
3.07 with entropy 2.01, a collapse; docs/evaluation.md). The knobs are
``objective.entropy_tolerance`` and ``objective.penalty`` in ``conf/sample.yaml``.

Inside a study (``hydra/sweeper=sampler_study``, Hydra's Optuna sweeper) a point that stops with a user
error is recorded in its ``error.json`` and gets :data:`FAILED` (+inf, the worst value, which Optuna
stores as a finished trial and TPE ranks last): the sweeper would end the whole study on anything that
is not a number. A study also refuses, before sampling, a run that cannot be scored (no judge, no
held-out text).
"""

from __future__ import annotations

import math
from typing import Callable

from omegaconf import DictConfig

from textflow.checks import require_number
from textflow.errors import ConfigError

__all__ = ["FAILED", "OPTUNA_SWEEPER", "check_knobs", "in_study", "measured", "penalised_objective",
           "require_measurable", "scored_run"]

FAILED = float("inf")
OPTUNA_SWEEPER = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"


def check_knobs(*, entropy_tolerance, penalty) -> tuple[float, float]:
    """``(entropy_tolerance, penalty)`` as floats; a negative or non-finite one is a one-line ConfigError."""
    tolerance = require_number("objective.entropy_tolerance", entropy_tolerance, low=0,
                               hint=" (nats of unigram entropy around held-out text's that cost nothing)")
    weight = require_number("objective.penalty", penalty, low=0,
                            hint=" (ln gen-PPL added per nat of entropy beyond the tolerance)")
    return tolerance, weight


def measured(metrics: dict) -> tuple[float, float, float] | None:
    """``(gen_ppl, unigram_entropy, held-out unigram_entropy)`` of a run's metrics, or None when one is
    missing (a run without the judge, with ``reference=false``, or of images)."""
    heldout = metrics.get("reference/heldout")
    values = (metrics.get("gen_ppl"), metrics.get("unigram_entropy"),
              heldout.get("unigram_entropy") if isinstance(heldout, dict) else None)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return None
    return float(values[0]), float(values[1]), float(values[2])


def penalised_objective(metrics: dict, *, entropy_tolerance, penalty) -> float:
    """The objective of the module docstring for one run's ``metrics`` (a ``metrics.json``); a gen-PPL
    that is not a positive number, or a nan, gives :data:`FAILED`."""
    tolerance, weight = check_knobs(entropy_tolerance=entropy_tolerance, penalty=penalty)
    parts = measured(metrics)
    if parts is None:
        raise ConfigError("the sampler-study objective needs the run's gen_ppl, unigram_entropy and the "
                          "held-out row's unigram_entropy; run with the judge (evaluation=judge) and "
                          "reference=true")
    gen_ppl, entropy, heldout = parts
    if not gen_ppl > 0 or any(math.isnan(v) for v in parts):
        return FAILED
    return math.log(gen_ppl) + weight * max(0.0, abs(entropy - heldout) - tolerance)


def require_measurable(cfg: DictConfig) -> None:
    """Refuse, before sampling, a study point whose run cannot be scored."""
    if cfg.evaluation.get("judge") is None:
        raise ConfigError("a sampler study minimises ln gen-PPL, but evaluation has no judge "
                          "(evaluation=diversity); drop evaluation=diversity "
                          "(evaluation=judge is the default)")
    if not cfg.reference:
        raise ConfigError("reference=false: a sampler study compares the samples' entropy with held-out "
                          "text's; set reference=true")


def in_study() -> bool:
    """True inside a ``-m`` sweep run by Hydra's Optuna sweeper (``hydra/sweeper=sampler_study``)."""
    from textflow.cli import in_multirun  # here: the sweep report reads the objective without torch

    if not in_multirun():
        return False
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get().sweeper.get("_target_") == OPTUNA_SWEEPER


def scored_run(cfg: DictConfig, *, run: Callable[[DictConfig], tuple[dict, dict]],
               study: bool) -> float | None:
    """``run(cfg)`` (the sampling run) and its objective. Outside a study a run that cannot be scored
    (no judge, no held-out row) returns None; inside one it is refused before ``run`` starts."""
    knobs = {"entropy_tolerance": cfg.objective.entropy_tolerance, "penalty": cfg.objective.penalty}
    check_knobs(**knobs)
    if study:
        require_measurable(cfg)
    metrics, _ = run(cfg)
    if not study and measured(metrics) is None:
        return None
    return penalised_objective(metrics, **knobs)
