"""Export a checkpoint to a folder without pickle, with a model card, and load it back in two lines
(docs/reliability.md, "Exported models")."""

from __future__ import annotations

from pathlib import Path

from textflow.checkpoint import read_checkpoint
from textflow.checkpoint.folder import write_folder
from textflow.export.api import Pretrained, load_pretrained
from textflow.export.card import model_card


def export_checkpoint(ckpt_path: str | Path, out_dir: str | Path, *, report: str | Path | None = None) -> Path:
    """Write ``out_dir`` (model.safetensors, textflow.json, tokenizer.json, README.md) from a checkpoint;
    ``report`` adds a sweep's ``report.csv`` to the model card. The checkpoint is read with every check
    of :func:`read_checkpoint`; a run's ``train_metrics.json`` next to its ``checkpoints/`` folder goes
    into the card."""
    ckpt = read_checkpoint(ckpt_path, key="CKPT")
    ckpt_path = Path(ckpt_path)
    metrics = ckpt_path.parent.parent / "train_metrics.json" if ckpt_path.is_file() else None
    card = model_card(ckpt, source=str(ckpt_path), train_metrics=metrics,
                      report=None if report is None else Path(report))
    return write_folder(ckpt, Path(out_dir), card=card)


__all__ = ["Pretrained", "export_checkpoint", "load_pretrained", "model_card"]
