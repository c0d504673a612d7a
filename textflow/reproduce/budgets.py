"""What ``python -m textflow.reproduce`` trains and samples at each budget (docs/reproduce.md).

A budget is data: the ``train.py`` overrides of each model and the sizes of the sampling and
diagnostics runs. ``full`` is every experiment as shipped in ``conf/experiment/`` (the numbers of
docs/diagnostics.md and docs/results.md came from those configs); ``fast`` cuts every model to a
few hundred steps so the whole report fits in about 20 minutes of a 2-core CPU, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass

# Training-time callbacks off in the fast budget: sample logging and the diagnostics callback cost
# time the fast budget does not have (the report runs the diagnostics once, at the end).
_QUIET = ("callbacks.samples=null", "callbacks.diagnostics.every_n_validations=0")


def _cap(seconds: int) -> str:
    return f"trainer.max_time=00:00:{seconds // 60:02d}:{seconds % 60:02d}"


def _short(steps: int, *, seconds: int, warmup: int, val_batches: int = 2) -> tuple[str, ...]:
    """Overrides that stop a run after ``steps`` optimizer steps (or ``seconds``), validating once."""
    return (f"trainer.max_steps={steps}", f"module.scheduler.warmup_steps={warmup}", _cap(seconds), f"trainer.val_check_interval={steps}",
            f"trainer.limit_val_batches={val_batches}", f"callbacks.model_checkpoint.every_n_train_steps={steps // 2}",
            *_QUIET)


def _short_stage_one(steps: int, *, seconds: int) -> tuple[str, ...]:
    """The same for ``stage=autoencoder`` (its schedule lives under ``stage.scheduler``)."""
    return (f"trainer.max_steps={steps}", f"stage.scheduler.warmup_steps={min(100, steps // 5)}", _cap(seconds), f"trainer.val_check_interval={steps}",
            "trainer.limit_val_batches=2", f"callbacks.model_checkpoint.every_n_train_steps={steps // 2}",
            *_QUIET)


@dataclass(frozen=True)
class Budget:
    """The overrides of every training run and the sizes of every measurement.

    text: the quickstart text model (sampler sweep, K = 1 collapse, CCI, the adaptive sampler) and
    the distillation teacher. tube: ``experiment=diag_tube`` (DABI, flip curves, tube law, row space).
    smooth_ae / smooth_flow: the smooth image control's two stages. ar_ae / ar_flow: the bottlenecked
    AR decoder's two stages (``experiment=ar_bottleneck``). distill: ``stage=distill`` on ``text``.
    """

    name: str
    summary: str
    text: tuple[str, ...]
    tube: tuple[str, ...]
    smooth_ae: tuple[str, ...]
    smooth_flow: tuple[str, ...]
    ar_ae: tuple[str, ...]
    ar_flow: tuple[str, ...]
    distill: tuple[str, ...]
    samples: int          # samples of one sweep point
    blocks: int           # held-out blocks of the diagnostics
    sweep_steps: tuple[int, ...]
    student_steps: tuple[int, ...]


FULL = Budget(
    name="full",
    summary="every experiment as shipped in conf/experiment (quickstart 800 steps, diag_tube 2,000, "
            "smooth 2 x 4,000, AR decoder 4,000 + the flow's 9 minutes, 5 distillation rounds of 150 steps); "
            "64 samples per point, 64 held-out blocks",
    text=(),
    tube=(),
    smooth_ae=(),
    smooth_flow=(),
    ar_ae=("trainer.max_steps=4000", "trainer.max_time=00:00:30:00"),
    ar_flow=("trainer.max_time=00:00:09:00",),
    distill=("stage.steps_per_round=150", "data.batch_size=32", "trainer.max_time=null",
             "trainer.val_check_interval=150", "callbacks.samples=null"),
    samples=64,
    blocks=64,
    sweep_steps=(1, 4, 8, 16, 32),
    student_steps=(1, 2, 4, 8, 16),
)

FAST = Budget(
    name="fast",
    summary="every model cut to 80-400 steps (minutes, not the shipped tens of minutes), 3 distillation "
            "rounds of 25 steps, 32 samples per point, 32 held-out blocks: the pipeline and the direction "
            "of each finding, not the shipped models' numbers",
    text=_short(240, seconds=240, warmup=40),
    tube=_short(200, seconds=200, warmup=40),
    smooth_ae=_short_stage_one(400, seconds=45),
    smooth_flow=_short(400, seconds=45, warmup=50),
    ar_ae=("data.batch_size=64", *_short_stage_one(120, seconds=120)),
    ar_flow=("data.batch_size=64", *_short(80, seconds=90, warmup=20)),
    distill=("stage.start_steps=8", "stage.steps_per_round=25", "data.batch_size=32", "trainer.max_time=null",
             "trainer.val_check_interval=25", "trainer.limit_val_batches=2", "callbacks.samples=null"),
    samples=32,
    blocks=32,
    sweep_steps=(1, 4, 8),
    student_steps=(1, 2, 4),
)

BUDGETS: dict[str, Budget] = {b.name: b for b in (FAST, FULL)}
