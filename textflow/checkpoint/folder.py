"""The exported model folder: a checkpoint without pickle (docs/reliability.md, "Exported models").

``python -m textflow.export CKPT OUT_DIR`` writes

* ``model.safetensors``: every tensor of the checkpoint: the ``state_dict`` under its own names, and a
  distilled checkpoint's students as ``students/<K>/<name>`` and a flow-map student as
  ``flow_map/<name>``;
* ``textflow.json``: the plain-data run info (format, kind, config YAML, vocabulary size, block length,
  distillation record), everything of the checkpoint's ``textflow`` entry but tensors and tokenizer;
* ``tokenizer.json``: the tokenizer (the ``tokenizers`` library's JSON), readable by other tools;
* ``README.md``: the model card (:mod:`textflow.export.card`).

:func:`read_folder` turns such a folder back into the ``{"state_dict", "textflow"}`` dict a ``.ckpt``
gives, so :func:`textflow.checkpoint.read_checkpoint` (and with it ``sample.py``, the diagnostics
command and :func:`textflow.checkpoint.load_run`) accepts either, with the same checks: safetensors
holds tensors only, and the config is checked by the same allow-list as a checkpoint's.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from textflow.errors import CheckpointError

WEIGHTS, INFO, TOKENIZER = "model.safetensors", "textflow.json", "tokenizer.json"
STUDENTS = "students/"
FLOW_MAP = "flow_map"  # the flow-map student's state dict in the run info (textflow.samplers.flow_map)


def is_model_folder(path: Path) -> bool:
    return path.is_dir() and (path / WEIGHTS).is_file() and (path / INFO).is_file()


def folder_tensors(ckpt: dict) -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint dict under its folder name (contiguous copies: safetensors stores
    no shared or strided memory)."""
    out = {name: t.detach().cpu().contiguous().clone() for name, t in ckpt["state_dict"].items()}
    for k, state in (ckpt["textflow"].get("students") or {}).items():
        out.update({f"{STUDENTS}{k}/{name}": t.detach().cpu().contiguous().clone() for name, t in state.items()})
    for name, t in (ckpt["textflow"].get(FLOW_MAP) or {}).items():
        out[f"{FLOW_MAP}/{name}"] = t.detach().cpu().contiguous().clone()
    return out


def write_folder(ckpt: dict, out_dir: Path, *, card: str) -> Path:
    """Write the folder atomically: into a temporary sibling, renamed into place when complete. Refuses
    an existing ``out_dir`` that is not empty (nothing is overwritten)."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise CheckpointError(f"OUT_DIR {str(out_dir)!r} exists and is not an empty folder; choose a new one")
    info = {k: v for k, v in ckpt["textflow"].items() if k not in ("students", "tokenizer", FLOW_MAP)}
    info["students"] = sorted((ckpt["textflow"].get("students") or {}), key=int)
    info[FLOW_MAP] = bool(ckpt["textflow"].get(FLOW_MAP))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        save_file(folder_tensors(ckpt), str(tmp / WEIGHTS), metadata={"format": "pt", "textflow": "1"})
        (tmp / INFO).write_text(json.dumps(info, indent=1, sort_keys=True))
        if ckpt["textflow"].get("tokenizer") is not None:
            (tmp / TOKENIZER).write_text(ckpt["textflow"]["tokenizer"])
        (tmp / "README.md").write_text(card)
        _shareable(tmp)
        if out_dir.exists():
            out_dir.rmdir()  # empty, checked above
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _shareable(folder: Path) -> None:
    """The modes a plain ``mkdir`` / ``open`` would give under the user's umask (a temporary folder and
    safetensors' file start private): the folder is for sharing."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)
    for f in folder.iterdir():
        os.chmod(f, 0o666 & ~umask)


def read_folder(path: Path, *, where: str) -> dict:
    """``{"state_dict", "textflow"}`` of an exported folder, as :func:`read_checkpoint` returns for a .ckpt."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path / WEIGHTS), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{where} holds an unreadable {WEIGHTS}: {str(err).splitlines()[0][:160]}") from None
    try:
        info = json.loads((path / INFO).read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{where} holds an unreadable {INFO}: {str(err).splitlines()[0][:160]}") from None
    if not isinstance(info, dict):
        raise CheckpointError(f"{where}: {INFO} is not a JSON object")
    tokenizer = path / TOKENIZER
    info["tokenizer"] = tokenizer.read_text() if tokenizer.is_file() else None
    ks = info.pop("students", []) or []
    if not isinstance(ks, list) or not all(isinstance(k, str) and k.isdigit() for k in ks):
        raise CheckpointError(f"{where}: {INFO} lists students {ks!r}; expected step counts like [\"1\", \"2\"]")
    has_flow_map = info.pop(FLOW_MAP, False)
    if not isinstance(has_flow_map, bool):
        raise CheckpointError(f"{where}: {INFO} has {FLOW_MAP}={has_flow_map!r}; expected true or false")
    students = {k: {} for k in ks}
    state, flow_map = {}, {}
    for name, tensor in tensors.items():
        if name.startswith(FLOW_MAP + "/"):
            if not has_flow_map:
                raise CheckpointError(f"{where}: {WEIGHTS} holds flow-map weights that {INFO} does not list")
            flow_map[name[len(FLOW_MAP) + 1:]] = tensor
        elif name.startswith(STUDENTS):
            k, _, rest = name[len(STUDENTS):].partition("/")
            if k not in students:
                raise CheckpointError(f"{where}: {WEIGHTS} holds weights of student K={k} that {INFO} does not list")
            students[k][rest] = tensor
        else:
            state[name] = tensor
    if students:
        info["students"] = students
    if flow_map:
        info[FLOW_MAP] = flow_map
    return {"state_dict": state, "textflow": info}
