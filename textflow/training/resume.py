"""Resuming a run: which checkpoint to continue from, and whether it holds this run's model.

An interrupted run continues from ``<run dir>/checkpoints/last.ckpt`` when rerun into the same folder
(``resume=true``, the default), or from any ``ckpt_path=...`` (docs/reliability.md, "Resuming a run").
The checkpoint must have been trained with the same model: the same vocabulary (tokenizer and size),
the same kind (flow, autoencoder, distillation), the same architecture-defining config groups
(``autoencoder``, ``backbone``, ``path``) and the same ``data.seq_len``. Anything else may change on
resume (optimizer, scheduler, trainer, data loading, callbacks, loggers). A mismatch is one line naming
every key that differs, not Lightning's state_dict traceback. The stored config is read through
:func:`textflow.checkpoint.files.checkpoint_config` (plain data, checked, legacy names mapped).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lightning.pytorch.utilities import rank_zero_info
from omegaconf import DictConfig, OmegaConf

from textflow.checkpoint import check_same_vocabulary, checkpoint_config, read_checkpoint
from textflow.errors import CheckpointError

MODEL_GROUPS = ("autoencoder", "backbone", "path")  # config groups that define the trained network
MAX_LISTED = 8  # differences named in the message; the rest are counted


class _Unset:
    def __repr__(self) -> str:
        return "unset"


UNSET = _Unset()


def model_view(info: dict) -> dict:
    """The architecture-defining part of a checkpoint's run info (``textflow.checkpoint.make_run_info``):
    the :data:`MODEL_GROUPS` of its stored config, ``data.seq_len`` and ``vocab_size``."""
    cfg = OmegaConf.to_container(checkpoint_config(info, source="the run info"))  # checked, legacy names mapped
    view: dict[str, Any] = {group: cfg[group] for group in MODEL_GROUPS if group in cfg}
    view["data"] = {"seq_len": info.get("seq_len")}
    view["vocab_size"] = info.get("vocab_size")
    return view


def config_diff(old: Any, new: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """``(dotted key, old value, new value)`` for every leaf that differs between two plain config
    trees (``UNSET`` where a key exists on one side only). Where a node's ``_target_`` differs, only
    the ``_target_`` is reported: the other keys of two different classes are not comparable."""
    if isinstance(old, dict) and isinstance(new, dict):
        if old.get("_target_", UNSET) != new.get("_target_", UNSET):
            return [(_join(prefix, "_target_"), old.get("_target_", UNSET), new.get("_target_", UNSET))]
        keys = list(old) + [k for k in new if k not in old]
        return [d for k in keys for d in config_diff(old.get(k, UNSET), new.get(k, UNSET), _join(prefix, str(k)))]
    if old is UNSET and new is UNSET or old == new:
        return []
    return [(prefix, old, new)]


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _show(value: Any) -> str:
    if value is UNSET:
        return "unset"
    text = value if isinstance(value, str) else json.dumps(value, default=str, separators=(",", ":"))
    return text if len(text) <= 60 else text[:57] + "..."


def describe_diff(diff: list[tuple[str, Any, Any]]) -> str:
    """``key (old -> new), ...``: at most :data:`MAX_LISTED` keys, then how many more."""
    shown = ", ".join(f"{key} ({_show(old)} -> {_show(new)})" for key, old, new in diff[:MAX_LISTED])
    return shown + (f" and {len(diff) - MAX_LISTED} more" if len(diff) > MAX_LISTED else "")


def check_same_model(path: str, info: dict, run_info: dict) -> None:
    """Raise :class:`CheckpointError` unless the checkpoint's run info ``info`` describes the model of
    this run (``run_info``): same vocabulary, kind, model config groups and block length."""
    check_same_vocabulary("ckpt_path", path, info, tokenizer_json=run_info.get("tokenizer"),
                          vocab_size=run_info.get("vocab_size"))
    kind, ours = info.get("kind", "flow"), run_info.get("kind", "flow")
    if kind != ours:
        raise CheckpointError(f"ckpt_path={path!r} was written by a kind={kind!r} run but this run is kind={ours!r}; "
                              "resume with the stage that wrote it or start a new run folder")
    diff = config_diff(model_view(info), model_view(run_info))
    if diff:
        raise CheckpointError(f"ckpt_path={path!r} was trained with a different model config: {describe_diff(diff)}; "
                              "resume with the same config or start a new run folder")


def resume_checkpoint(cfg: DictConfig, run_info: dict) -> str | None:
    """The checkpoint to resume from: ``ckpt_path`` if given, else ``<run dir>/checkpoints/last.ckpt``
    when ``resume`` is on and it exists; None for a fresh start. Refuses (:func:`check_same_model`) a
    checkpoint trained with another vocabulary or model config."""
    path = cfg.get("ckpt_path")
    if path is None and cfg.get("resume"):
        last = Path(cfg.dirs.output_dir) / "checkpoints" / "last.ckpt"
        path = str(last) if last.is_file() else None
    if path is None:
        return None
    info = read_checkpoint(path)["textflow"]
    check_same_model(str(path), info, run_info)
    rank_zero_info(f"[textflow] resuming from {path}")
    return str(path)
