"""What a readout kind reports for one sampling run; :func:`textflow.sampling.outputs.publish` writes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional


@dataclass
class SampleReport:
    """What one sampling run reports.

    ``metrics`` becomes ``metrics.json`` (``run_id`` is added last, when it is written); ``rows``, when
    given, ``samples.jsonl`` (each row gets the run id first); ``text_table`` goes to loggers that take
    text as (index, text) rows; ``figures`` maps a file name in the run folder to the function drawing it;
    ``show`` prints the report; ``samples_file`` is the file the final line names beside metrics.json;
    ``objects`` is returned to the caller with the metrics.
    """

    metrics: dict
    objects: dict
    samples_file: str
    rows: Optional[list[dict]] = None
    text_table: Optional[list[list]] = None
    figures: dict[str, Callable[[Path], None]] = field(default_factory=dict)
    show: Callable[[], None] = lambda: None
