"""One run's outputs are one unit: written together, tied by a run id, and never lost.

:func:`write_run_outputs` writes every file of a run (e.g. ``samples.jsonl`` and ``metrics.json``) to
fsynced temporaries first and renames them only when all are complete, and every file records the same
``run_id`` (:func:`new_run_id`), so a reader can tell that two files belong to one run even if a kill
lands between two renames. If the run folder cannot be written (removed, made read-only or replaced
mid-run), the files go to a rescue folder instead and the error names it (docs/reliability.md).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from pathlib import Path

from textflow.errors import TextflowError
from textflow.io import write_temporary


class OutputError(TextflowError):
    """The run folder could not be written (the outputs were rescued elsewhere)."""


def new_run_id() -> str:
    """A unique, sortable id for one run: ``YYYYmmdd-HHMMSS-<8 hex>``."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"


def rescue_dir(run_id: str) -> Path:
    """Where a run's outputs go when its folder cannot be written (``TEXTFLOW_RESCUE_DIR`` or the
    system's temporary folder)."""
    root = os.environ.get("TEXTFLOW_RESCUE_DIR") or Path(tempfile.gettempdir()) / "textflow-rescue"
    return Path(root) / run_id


def _write_unit(folder: Path, files: dict[str, bytes]) -> None:
    temporaries = []
    try:
        for name, data in files.items():
            temporaries.append((write_temporary(folder / name, data), folder / name))
        for tmp, target in temporaries:
            os.replace(tmp, target)
    finally:
        for tmp, _ in temporaries:
            tmp.unlink(missing_ok=True)


def write_run_outputs(folder: str | Path, files: dict[str, str | bytes], *, run_id: str) -> Path:
    """Write ``files`` (name -> text or bytes) into ``folder`` as one unit; returns the folder used.

    On an ``OSError`` the same files are written to :func:`rescue_dir` and :class:`OutputError` is
    raised naming both folders, so nothing the run computed is lost.
    """
    data = {name: body.encode("utf-8") if isinstance(body, str) else bytes(body) for name, body in files.items()}
    folder = Path(folder)
    try:
        _write_unit(folder, data)
        return folder
    except OSError as err:
        reason = f"{type(err).__name__}: {err.strerror or err}"
    rescue = rescue_dir(run_id)
    _write_unit(rescue, data)
    raise OutputError(f"could not write {', '.join(data)} to {folder} ({reason}); they were saved to {rescue} "
                      "instead")


def unit_mismatch(folder: str | Path) -> str | None:
    """Why ``folder``'s ``samples.jsonl`` and ``metrics.json`` are not one run's readable outputs, or None.

    Files written before run ids existed (no ``run_id`` in either) are accepted."""
    folder = Path(folder)
    samples, metrics = folder / "samples.jsonl", folder / "metrics.json"
    try:
        metrics_id = json.loads(metrics.read_text()).get("run_id") if metrics.is_file() else None
        if not (samples.is_file() and metrics.is_file()):
            return None
        with samples.open() as fh:
            first = fh.readline()
        samples_id = json.loads(first).get("run_id") if first.strip() else None
    except (OSError, ValueError, AttributeError) as err:  # truncated or hand-edited files
        return f"unreadable outputs ({type(err).__name__}: {' '.join(str(err).split())[:100]})"
    if metrics_id != samples_id:
        return f"samples.jsonl (run {samples_id}) and metrics.json (run {metrics_id}) come from different runs"
    return None
