"""Training stages: what ``train.py stage=<name>`` builds (conf/stage/*.yaml, ``_partial_``).

A stage is a function ``(cfg, *, tokenizer, seq_len) -> LightningModule``; train.py calls whichever
the config names, so adding a stage never touches train.py.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from textflow.checkpoint import build_module, load_run, make_run_info
from textflow.errors import CheckpointError


def flow(cfg: DictConfig, *, tokenizer, seq_len: int):
    """Train the backbone jointly with its autoencoder (the foundation's joint mode)."""
    module = build_module(cfg, vocab_size=tokenizer.vocab_size, seq_len=seq_len)
    module.run_info = make_run_info(cfg, tokenizer_json=tokenizer.to_json(), vocab_size=tokenizer.vocab_size,
                                    seq_len=seq_len)
    return module


def distill(cfg: DictConfig, *, tokenizer, seq_len: int, teacher_ckpt: str, start_steps: int = 32,
            min_steps: int = 1, steps_per_round: int = 500, optimizer=None):
    """Progressive distillation of the flow in ``teacher_ckpt`` (textflow.distill)."""
    from textflow.distill import DistillModule

    loaded = load_run(teacher_ckpt)
    if loaded.info["tokenizer"] != tokenizer.to_json():
        raise CheckpointError(f"teacher_ckpt={teacher_ckpt!r} was trained with another vocabulary "
                              f"(vocab_size={loaded.info['vocab_size']}) than this run's data "
                              f"(vocab_size={tokenizer.vocab_size}); use the teacher's data config")
    if int(loaded.info["seq_len"]) != int(seq_len):
        raise CheckpointError(f"teacher_ckpt={teacher_ckpt!r} was trained on blocks of {loaded.info['seq_len']} "
                              f"tokens; set data.seq_len={loaded.info['seq_len']}")
    export = Path(cfg.paths.output_dir) / "checkpoints" / "distilled.ckpt"
    return DistillModule(teacher=loaded.module, teacher_ckpt=str(teacher_ckpt), export_path=str(export),
                         start_steps=start_steps, min_steps=min_steps, steps_per_round=steps_per_round,
                         optimizer=optimizer)
