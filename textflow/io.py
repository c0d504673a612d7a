"""Atomic file writes: a crash or an interrupt never leaves a half-written output behind.

Each file is written to a temporary file in its folder, fsynced and renamed over the target, with the
permissions a plain ``open()`` would give (``0o666`` minus the umask; ``mkstemp``'s private ``0o600``
never leaks). JSON never holds ``NaN`` or ``Infinity`` literals, which strict JSON readers reject: a
non-finite float is written as ``null`` (docs/reliability.md).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable


def default_file_mode() -> int:
    """``0o666`` minus the process umask (what ``open(path, "w")`` would create)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_temporary(path: Path, data: bytes) -> Path:
    """Write ``data`` to a fsynced temporary file beside ``path`` (renamed by the caller)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, default_file_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    tmp = write_temporary(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def finite_json(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by ``None`` (and tuples as lists)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    return obj


def json_text(obj: Any, *, indent: int | None = 2) -> str:
    """Strict JSON (``allow_nan=False``) of ``obj`` after :func:`finite_json`."""
    return json.dumps(finite_json(obj), indent=indent, ensure_ascii=False, allow_nan=False)


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json_text(obj) + "\n")


def jsonl_text(rows: Iterable[dict]) -> str:
    """One strict JSON object per line."""
    return "".join(json_text(r, indent=None) + "\n" for r in rows)


def atomic_write_jsonl(path: str | Path, rows: Iterable[dict]) -> Path:
    return atomic_write_text(path, jsonl_text(rows))


def default_cache_dir() -> Path:
    """textflow's cache folder outside a Hydra run: ``TEXTFLOW_CACHE``, else ``~/.cache/textflow`` (the
    default of ``dirs.cache_dir``, conf/dirs/default.yaml)."""
    return Path(os.environ.get("TEXTFLOW_CACHE") or Path.home() / ".cache" / "textflow")
