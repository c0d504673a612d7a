"""What the distillation stages share (``stage=distill``, ``stage=flow_map``): reading the teacher
checkpoint a student is distilled from, and exporting the teacher's checkpoint with the students added,
so ``sample.py`` runs the teacher's samplers and the students' from one file (docs/samplers.md,
"Progressive distillation" and "Flow-map students")."""

from __future__ import annotations

import io
from pathlib import Path

import torch
from omegaconf import DictConfig

from textflow.checkpoint import check_same_vocabulary, load_run
from textflow.errors import CheckpointError
from textflow.io import atomic_write_bytes
from textflow.training.base import StageKeys, tokenizer_vocabulary

TEACHER_ARCHITECTURE = "the student copies the teacher's architecture"
STUDENT_UNREAD = {
    "autoencoder": "the student keeps the teacher's frozen autoencoder",
    "backbone": TEACHER_ARCHITECTURE,
    "path": TEACHER_ARCHITECTURE,
    "module": "the teacher comes from teacher_ckpt and the student trains with stage.optimizer",
    "autoencoder_ckpt": "the teacher's autoencoder comes from teacher_ckpt",
}


def student_stage_keys(name: str) -> StageKeys:
    """The keys of a stage that distils ``teacher_ckpt``: it reads the teacher and ``stage.*`` only."""
    return StageKeys(name, reads=("teacher_ckpt",), unread=STUDENT_UNREAD)


def load_teacher(cfg: DictConfig, keys: StageKeys, *, teacher_ckpt: str, tokenizer, seq_len: int):
    """The teacher run (:class:`textflow.checkpoint.LoadedRun`) of ``teacher_ckpt``, refused in one line
    unless it was trained on this run's vocabulary and block length; command-line overrides of keys the
    stage does not read are refused first."""
    keys.refuse_unread_overrides(cfg)
    loaded = load_run(teacher_ckpt, key="teacher_ckpt")
    tokenizer_json, vocab_size = tokenizer_vocabulary(tokenizer)
    check_same_vocabulary("teacher_ckpt", teacher_ckpt, loaded.info, tokenizer_json=tokenizer_json,
                          vocab_size=vocab_size)
    if int(loaded.info["seq_len"]) != int(seq_len):
        raise CheckpointError(f"teacher_ckpt={teacher_ckpt!r} was trained on blocks of {loaded.info['seq_len']} "
                              f"tokens; set data.seq_len={loaded.info['seq_len']}")
    return loaded


class TeacherExport:
    """Writes ``export_path``: the teacher checkpoint (read once, at the first write) with ``entries``
    added to its ``textflow`` run info, atomically, and never with a non-finite tensor
    (docs/reliability.md, "no silent NaN")."""

    def __init__(self, *, teacher_ckpt: str, export_path: str):
        self.teacher_ckpt, self.export_path = str(teacher_ckpt), str(export_path)
        self._teacher_file: dict | None = None

    def write(self, **entries) -> Path:
        from textflow.callbacks.finite import DivergedError
        from textflow.checkpoint.files import checkpoint_tensors, nonfinite_tensors, read_checkpoint

        if self._teacher_file is None:
            self._teacher_file = read_checkpoint(self.teacher_ckpt, key="teacher_ckpt")
        ckpt = self._teacher_file
        bad = nonfinite_tensors(checkpoint_tensors({"textflow": entries}))  # the students added
        if bad:
            raise DivergedError(f"distillation diverged: {len(bad)} student tensors are not finite (e.g. {bad[0]}); "
                                f"refusing to write {self.export_path}; lower stage.optimizer.lr")
        info = {**ckpt["textflow"], **entries}
        buffer = io.BytesIO()
        torch.save({"state_dict": ckpt["state_dict"], "textflow": info}, buffer)
        return atomic_write_bytes(self.export_path, buffer.getvalue())

