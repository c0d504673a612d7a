"""``python -m textflow.bench calibrate``: the CPU inference paths timed again, beside the answer this
machine has stored (:mod:`textflow.kernels.calibration`; docs/benchmarks.md, "Sampling at the machine's
limit", eleventh block).

The stored answer is one measurement, taken the first time a process needed it; on a shared host whose
speed drifts it depends on when that was. This benchmark measures ``repeats`` times (each the
calibration's own :func:`~textflow.kernels.calibration.measure` with ``rounds`` rounds), shows what each
measurement would choose and what their medians choose, and with ``store=True`` replaces the stored answer
with the latter.
"""

from __future__ import annotations

import statistics

from tqdm.auto import tqdm

from textflow.checks import require_int
from textflow.kernels import calibration


def run(*, rounds: int = calibration.ROUNDS, repeats: int = 3, store: bool = False) -> list[dict]:
    rounds = require_int("--rounds", rounds, low=1)
    repeats = require_int("--repeats", repeats, low=1)
    stored = calibration.stored_choice() or {"backend": None, "gelu": None}
    measured = [calibration.measure(rounds=rounds)
                for _ in tqdm(range(repeats), desc="calibration", leave=False)]
    pooled = {name: statistics.median(m[name] for m in measured) for name in calibration.PATHS}
    if store:
        calibration.store(calibration.choose(pooled), pooled)
    rows = [_row(str(i + 1), median_ms, stored) for i, median_ms in enumerate(measured)]
    return [*rows, _row("median", pooled, stored, stored_now=store)]


def _row(label: str, median_ms: dict[str, float], stored: dict, *, stored_now: bool = False) -> dict:
    choice = calibration.choose(median_ms)
    return {"measurement": label, **{f"{name}_ms": ms for name, ms in median_ms.items()},
            "backend": choice["backend"], "gelu": choice["gelu"], "stored_backend": stored["backend"],
            "stored_gelu": stored["gelu"], "stored_now": stored_now}
