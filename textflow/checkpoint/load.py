"""Rebuild a trained run (module, tokenizer, config) from a checkpoint alone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from textflow.checkpoint.build import FORMAT_VERSION, build_module
from textflow.checkpoint.files import checkpoint_config, read_checkpoint
from textflow.errors import CheckpointError


@dataclass
class LoadedRun:
    module: Any  # LatentFlowModule with weights loaded
    tokenizer: Any  # TextTokenizer, or None for non-text data (the smooth image control)
    config: DictConfig
    info: dict
    path: Path

    def denoiser(self, *, use_ema: bool = True):
        """The model's denoiser (a sampler that runs other weights, e.g. a distilled student, resolves
        them itself: ``Sampler.denoiser(loaded, use_ema=...)``)."""
        return self.module.denoiser(use_ema=use_ema)


def load_run(path: str | Path, *, key: str = "ckpt_path") -> LoadedRun:
    """Rebuild the trained module and tokenizer from a checkpoint alone (``key`` names the option
    that gave ``path``, for error messages)."""
    from textflow.data.tokenizers import TextTokenizer

    ckpt = read_checkpoint(path, key=key)
    info = ckpt["textflow"]
    exports = {"distill-state": "distilled.ckpt", "flow-map-state": "flow_map.ckpt"}
    if info.get("kind") in exports:
        raise CheckpointError(f"{key}={str(path)!r} is a distillation training state; sample with the "
                              f"{exports[info['kind']]} next to it")
    if info.get("kind") == "autoencoder":
        raise CheckpointError(f"{key}={str(path)!r} holds an autoencoder alone; train a flow on it first: "
                              f"python train.py stage=flow autoencoder_ckpt={path}")
    if info.get("kind") == "ar_twin":
        raise CheckpointError(f"{key}={str(path)!r} holds an AR twin (train.py experiment=ar_twin), not a flow; "
                              f"pass it as ar_twin= beside a flow: python sample.py ckpt_path=FLOW ar_twin={path}")
    if info.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{key}={str(path)!r} has checkpoint format {info.get('format')!r}; "
                              f"this textflow reads format {FORMAT_VERSION}")
    cfg = checkpoint_config(info, source=f"{key}={str(path)!r}")
    try:
        tokenizer = None if info["tokenizer"] is None else TextTokenizer.from_json(info["tokenizer"])
    except Exception as err:  # noqa: BLE001 - the tokenizers library raises its own types for bad JSON
        raise CheckpointError(f"{key}={str(path)!r} stores a tokenizer that cannot be read: "
                              f"{str(err).splitlines()[0][:120] if str(err) else type(err).__name__}") from None
    if tokenizer is not None and tokenizer.vocab_size != info["vocab_size"]:
        raise CheckpointError(f"{key}={str(path)!r}: its tokenizer has {tokenizer.vocab_size} tokens but the "
                              f"model was trained for vocab_size={info['vocab_size']}")
    module = build_module(cfg, vocab_size=info["vocab_size"], seq_len=info["seq_len"])
    try:
        module.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        raise CheckpointError(f"{key}={str(path)!r} does not match its own config: "
                              f"{' '.join(first[:2])[:200]}") from None
    module.run_info = dict(info)
    module.eval()
    return LoadedRun(module=module, tokenizer=tokenizer, config=cfg, info=dict(info), path=Path(str(path)))
