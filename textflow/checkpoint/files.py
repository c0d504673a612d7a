"""The one reader of checkpoint files: every place that opens a ``.ckpt`` (sampling, resume,
``teacher_ckpt=``, ``autoencoder_ckpt=``, diagnose, bench) goes through :func:`read_checkpoint`.

It loads with ``torch.load(weights_only=True)`` (tensors and plain containers only), checks that the
file is a textflow checkpoint, that its stored config is safe data
(:mod:`textflow.checkpoint.safe_config`) and that every weight is finite. Each failure is a one-line
:class:`~textflow.errors.CheckpointError` naming the key and the path (docs/reliability.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

import torch
from omegaconf import DictConfig

from textflow.checkpoint.folder import FLOW_MAP, INFO, WEIGHTS, is_model_folder, read_folder
from textflow.checkpoint.safe_config import parse_checkpoint_config
from textflow.errors import CheckpointError


def nonfinite_tensors(tensors: Iterable[tuple[str, Any]]) -> list[str]:
    """Names of the floating-point tensors that hold a NaN or an infinity."""
    return [name for name, value in tensors
            if torch.is_tensor(value) and value.is_floating_point() and not bool(torch.isfinite(value).all())]


def checkpoint_tensors(ckpt: dict) -> Iterable[tuple[str, Any]]:
    """Every stored weight: the model's state_dict, any distilled students and a flow-map student."""
    yield from ckpt.get("state_dict", {}).items()
    info = ckpt.get("textflow", {})
    for k, student in (info.get("students") or {}).items():
        yield from ((f"students[{k}].{n}", v) for n, v in student.items())
    yield from ((f"{FLOW_MAP}.{n}", v) for n, v in (info.get(FLOW_MAP) or {}).items())


def checkpoint_config(info: dict, *, source: str) -> DictConfig:
    """The validated run config stored in a checkpoint's ``textflow`` entry."""
    return parse_checkpoint_config(info.get("config"), source=source)


RUN_INFO_TYPES = {"seq_len": (int,), "vocab_size": (int, type(None)), "tokenizer": (str, type(None))}


def check_run_info(info: dict, *, where: str) -> None:
    """The plain-data run info every reader relies on has the right keys and types (one line if not)."""
    for name, types in RUN_INFO_TYPES.items():
        value = info.get(name, KeyError)
        if value is KeyError or isinstance(value, bool) or not isinstance(value, types):
            raise CheckpointError(f"{where} is not a usable textflow checkpoint: its run info has "
                                  f"{name}={'missing' if value is KeyError else repr(value)[:40]}")
    students = info.get("students") or {}
    if not isinstance(students, dict) or not all(isinstance(k, str) and k.isdigit() and isinstance(v, dict)
                                                 for k, v in students.items()):
        raise CheckpointError(f"{where} is not a usable textflow checkpoint: its students are not "
                              "{steps: state_dict} entries")
    flow_map = info.get(FLOW_MAP) or {}
    if not isinstance(flow_map, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in flow_map.items()):
        raise CheckpointError(f"{where} is not a usable textflow checkpoint: its {FLOW_MAP} entry is not a state_dict")


def check_same_vocabulary(key: str, path, info: Mapping, *, tokenizer_json: str | None, vocab_size: int | None,
                          hint: str | None = None) -> None:
    """Raise :class:`CheckpointError` unless the checkpoint ``path`` (given as ``key=``; its run info
    ``info``) was trained with this run's tokenizer: the same tokenizer JSON and vocabulary size. The one
    check for ``autoencoder_ckpt=``, ``teacher_ckpt=``, resume (``ckpt_path=``) and ``sample.py ar_twin=``;
    ``hint`` replaces the default advice at the end of the message."""
    if info.get("tokenizer") != tokenizer_json or info.get("vocab_size") != vocab_size:
        hint = hint or f"use the data/tokenizer config {key} was trained with"
        raise CheckpointError(f"{key}={str(path)!r} was trained with another vocabulary "
                              f"(vocab_size={info.get('vocab_size')}) than this run's data "
                              f"(vocab_size={vocab_size}); {hint}")


def _describe(key: str, path: Any) -> str:
    return f"{key}={str(path)!r}"


def read_checkpoint(path: str | Path, *, key: str = "ckpt_path") -> dict:
    """Load and check a checkpoint (a Lightning ``.ckpt`` read with ``weights_only=True``, or a folder
    written by ``python -m textflow.export``: :mod:`textflow.checkpoint.folder`); ``key`` is the option
    that named it (``ckpt_path``, ``teacher_ckpt``, ``autoencoder_ckpt``), used in every error message."""
    where = _describe(key, path)
    p = Path(str(path)).expanduser()
    if is_model_folder(p):  # python -m textflow.export: safetensors + JSON, no pickle at all
        ckpt = read_folder(p, where=where)
    elif p.is_dir():
        found = sorted(str(f) for f in p.rglob("*.ckpt"))[:3]
        hint = f"e.g. {found[0]}" if found else "none is inside it"
        raise CheckpointError(f"{where} is a directory without {WEIGHTS} and {INFO}; pass a .ckpt file ({hint}) "
                              "or a folder written by python -m textflow.export")
    elif not p.is_file():
        raise CheckpointError(f"{where} does not exist (pass the .ckpt file train.py printed)")
    else:
        try:
            ckpt = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises many types for truncated, foreign or pickled-code files
            reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
            raise CheckpointError(f"{where} is not a readable checkpoint: {reason}") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("textflow"), dict) or \
            not isinstance(ckpt.get("state_dict"), dict):
        raise CheckpointError(f"{where} is not a textflow checkpoint (no 'textflow' run info)")
    check_run_info(ckpt["textflow"], where=where)
    checkpoint_config(ckpt["textflow"], source=where)
    bad = nonfinite_tensors(checkpoint_tensors(ckpt))
    if bad:
        raise CheckpointError(f"{where} holds non-finite weights ({len(bad)} tensors, e.g. {bad[0]}): the run "
                              "diverged; use an earlier checkpoint or retrain with a lower learning rate")
    return ckpt
