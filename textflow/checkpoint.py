"""Self-describing checkpoints: build a model from its config, and load one back safely.

A textflow checkpoint is a Lightning ``.ckpt`` whose ``"textflow"`` entry holds plain data only:
``config`` (the resolved run config as YAML), ``tokenizer`` (the tokenizer's JSON), ``vocab_size``,
``seq_len`` and ``format``. Loading uses ``torch.load(weights_only=True)`` and refuses any config
whose ``_target_`` lies outside textflow / torch / lightning, so a checkpoint cannot run arbitrary
code.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from textflow.errors import CheckpointError

FORMAT_VERSION = 1
SAFE_TARGET_PREFIXES = ("textflow.", "torch.", "lightning.")


def iter_targets(node: Any, where: str = ""):
    """Yield ``(config_path, target)`` for every ``_target_`` in a config tree."""
    if isinstance(node, (DictConfig, dict)):
        for key, value in node.items():
            if key == "_target_":
                yield where or "<root>", str(value)
            else:
                yield from iter_targets(value, f"{where}.{key}" if where else str(key))
    elif isinstance(node, (ListConfig, list, tuple)):
        for i, value in enumerate(node):
            yield from iter_targets(value, f"{where}[{i}]")


def assert_safe_targets(cfg: Any, *, source: str) -> None:
    for where, target in iter_targets(cfg):
        if not target.startswith(SAFE_TARGET_PREFIXES):
            raise CheckpointError(f"refusing to instantiate {where}._target_={target!r} read from {source}: "
                                  f"only {', '.join(p + '*' for p in SAFE_TARGET_PREFIXES)} are allowed")


def build_autoencoder(cfg: DictConfig, *, vocab_size: int | None):
    """The autoencoder of a run config (``vocab_size`` is None for non-text data)."""
    return instantiate(cfg.autoencoder, **({} if vocab_size is None else {"vocab_size": vocab_size}))


def build_module(cfg: DictConfig, *, vocab_size: int | None, seq_len: int):
    """Instantiate autoencoder, backbone, path and the LightningModule from a run config.

    Used by train.py for a fresh run and by :func:`load_run` for a checkpoint, so both build the
    model the same way.
    """
    autoencoder = build_autoencoder(cfg, vocab_size=vocab_size)
    backbone = instantiate(cfg.backbone, latent_dim=autoencoder.latent_dim, max_len=seq_len)
    path = instantiate(cfg.path)
    return instantiate(cfg.module, autoencoder=autoencoder, backbone=backbone, path=path)


def make_run_info(cfg: DictConfig, *, tokenizer_json: str | None, vocab_size: int | None, seq_len: int,
                  kind: str = "flow") -> dict:
    """Plain-data run info stored in every checkpoint (``kind``: ``flow`` or ``autoencoder``)."""
    keys = ("autoencoder", "backbone", "path", "module", "data") if kind == "flow" else ("autoencoder", "data")
    model_cfg = {k: OmegaConf.to_container(cfg[k], resolve=True) for k in keys if k in cfg}
    return {
        "format": FORMAT_VERSION,
        "kind": kind,
        "config": OmegaConf.to_yaml(OmegaConf.create(model_cfg)),
        "tokenizer": tokenizer_json,
        "vocab_size": None if vocab_size is None else int(vocab_size),
        "seq_len": int(seq_len),
    }


@dataclass
class LoadedRun:
    module: Any  # LatentFlowModule with weights loaded
    tokenizer: Any  # TextTokenizer, or None for non-text data (the smooth image control)
    config: DictConfig
    info: dict
    path: Path

    @property
    def student_steps(self) -> list[int]:
        return sorted(int(k) for k in self.info.get("students", {}))

    def denoiser(self, *, use_ema: bool = True, student_steps: int | None = None):
        """The model's denoiser, or (``student_steps=K``) the distilled K-step student's."""
        den = self.module.denoiser(use_ema=use_ema)
        if student_steps is None:
            return den
        if student_steps not in self.student_steps:
            have = ", ".join(map(str, self.student_steps)) or "none (run train.py stage=distill teacher_ckpt=...)"
            raise CheckpointError(f"no student was distilled for sampler.steps={student_steps} in "
                                  f"{str(self.path)!r}; students exist for steps: {have}")
        student = copy.deepcopy(den.backbone)
        student.load_state_dict(self.info["students"][str(student_steps)])
        den.backbone = student.to(next(den.autoencoder.parameters()).device)
        return den


def read_checkpoint(path: str | Path) -> dict:
    """``torch.load(weights_only=True)`` with one-line errors for missing or corrupt files."""
    p = Path(str(path)).expanduser()
    if not p.is_file():
        raise CheckpointError(f"ckpt_path={str(path)!r} does not exist (pass the .ckpt file train.py printed)")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for truncated / foreign files
        reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"ckpt_path={str(path)!r} is not a readable checkpoint: {reason}") from None
    if not isinstance(ckpt, dict) or "textflow" not in ckpt or "state_dict" not in ckpt:
        raise CheckpointError(f"ckpt_path={str(path)!r} is not a textflow checkpoint (no 'textflow' run info)")
    return ckpt


def load_run(path: str | Path) -> LoadedRun:
    """Rebuild the trained module and tokenizer from a checkpoint alone."""
    from textflow.data.tokenizers import TextTokenizer

    ckpt = read_checkpoint(path)
    info = ckpt["textflow"]
    if info.get("kind") == "distill-state":
        raise CheckpointError(f"ckpt_path={str(path)!r} is a distillation training state; sample with the "
                              "distilled.ckpt next to it")
    if info.get("kind") == "autoencoder":
        raise CheckpointError(f"ckpt_path={str(path)!r} holds an autoencoder alone; train a flow on it first: "
                              f"python train.py stage=flow autoencoder_ckpt={path}")
    if info.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"ckpt_path={str(path)!r} has checkpoint format {info.get('format')!r}; "
                              f"this textflow reads format {FORMAT_VERSION}")
    cfg = OmegaConf.create(info["config"])
    assert_safe_targets(cfg, source=str(path))
    tokenizer = None if info["tokenizer"] is None else TextTokenizer.from_json(info["tokenizer"])
    if tokenizer is not None and tokenizer.vocab_size != info["vocab_size"]:
        raise CheckpointError(f"ckpt_path={str(path)!r}: its tokenizer has {tokenizer.vocab_size} tokens but the "
                              f"model was trained for vocab_size={info['vocab_size']}")
    module = build_module(cfg, vocab_size=info["vocab_size"], seq_len=info["seq_len"])
    try:
        module.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        raise CheckpointError(f"ckpt_path={str(path)!r} does not match its own config: "
                              f"{' '.join(first[:2])[:200]}") from None
    module.run_info = dict(info)
    module.eval()
    return LoadedRun(module=module, tokenizer=tokenizer, config=cfg, info=dict(info), path=Path(str(path)))
