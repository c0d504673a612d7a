"""Training stages: what ``train.py stage=<name>`` builds (conf/stage/*.yaml, ``_partial_``).

A stage is a function ``(cfg, *, tokenizer, seq_len) -> LightningModule``; train.py calls whichever
the config names, so adding a stage never touches train.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from omegaconf import DictConfig, OmegaConf, open_dict

from textflow.checkpoint import (build_autoencoder, build_module, checkpoint_config, load_run, make_run_info,
                                 read_checkpoint)
from textflow.errors import CheckpointError, ConfigError

NORMALIZED = "textflow.autoencoders.NormalizedAutoencoder"


def _vocab(tokenizer) -> tuple[int | None, str | None]:
    """(vocab_size, tokenizer JSON), both None for non-text data."""
    return (None, None) if tokenizer is None else (tokenizer.vocab_size, tokenizer.to_json())


def autoencoder(cfg: DictConfig, *, tokenizer, seq_len: int, optimizer: Callable,
                scheduler: Optional[Callable] = None):
    """Stage one of two-stage training: the autoencoder alone (textflow.training.autoencoder)."""
    from textflow.training.autoencoder import AutoencoderModule

    vocab_size, tokenizer_json = _vocab(tokenizer)
    model = build_autoencoder(cfg, vocab_size=vocab_size)
    if tokenizer is not None:
        model.bind_tokenizer(tokenizer)
    module = AutoencoderModule(autoencoder=model, optimizer=optimizer, scheduler=scheduler)
    module.run_info = make_run_info(cfg, tokenizer_json=tokenizer_json, vocab_size=vocab_size, seq_len=seq_len,
                                    kind="autoencoder")
    return module


def read_autoencoder(path: str, *, tokenizer, expected: DictConfig) -> tuple[dict, dict]:
    """(autoencoder config, weights) of an ``autoencoder`` checkpoint, checked against this run."""
    ckpt = read_checkpoint(path, key="autoencoder_ckpt")
    info = ckpt["textflow"]
    if info.get("kind") != "autoencoder":
        raise CheckpointError(f"autoencoder_ckpt={path!r} is a {info.get('kind', 'flow')!r} checkpoint, not one "
                              "written by train.py stage=autoencoder")
    if info.get("tokenizer") != _vocab(tokenizer)[1]:
        raise CheckpointError(f"autoencoder_ckpt={path!r} was trained with another vocabulary (vocab_size="
                              f"{info.get('vocab_size')}) than this run's data (vocab_size={_vocab(tokenizer)[0]}); "
                              "use the autoencoder's data/tokenizer config")
    ae_cfg = checkpoint_config(info, source=f"autoencoder_ckpt={path!r}").get("autoencoder")
    if ae_cfg is None:
        raise CheckpointError(f"autoencoder_ckpt={path!r} stores no autoencoder config")
    theirs = (ae_cfg._target_, ae_cfg.get("latent_dim"))
    ours = (expected._target_, expected.get("latent_dim"))
    if theirs != ours:
        raise CheckpointError(f"autoencoder_ckpt={path!r} holds {theirs[0]} with latent_dim={theirs[1]}, but this "
                              f"run configures {ours[0]} with latent_dim={ours[1]}; select the matching "
                              f"autoencoder=... and autoencoder.latent_dim={theirs[1]}")
    prefix = "autoencoder."
    weights = {k[len(prefix):]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    with open_dict(ae_cfg):
        if info.get("vocab_size") is not None:
            ae_cfg.vocab_size = info["vocab_size"]
    return OmegaConf.to_container(ae_cfg), weights


def flow(cfg: DictConfig, *, tokenizer, seq_len: int, autoencoder_ckpt: str | None = None):
    """Train the backbone: jointly with its autoencoder (the foundation's joint mode), or, with
    ``autoencoder_ckpt``, on the frozen, standardised latents of a stage-one autoencoder."""
    vocab_size, tokenizer_json = _vocab(tokenizer)
    weights = None
    if autoencoder_ckpt:
        inner_cfg, weights = read_autoencoder(str(autoencoder_ckpt), tokenizer=tokenizer, expected=cfg.autoencoder)
        cfg = cfg.copy()
        with open_dict(cfg):  # data may interpolate the autoencoder's keys (digits: latent_tokens)
            cfg.data = OmegaConf.to_container(cfg.data, resolve=True)
            cfg.autoencoder = {"_target_": NORMALIZED, "autoencoder": inner_cfg}
    module = build_module(cfg, vocab_size=vocab_size, seq_len=seq_len)
    positions = getattr(module.net["autoencoder"], "latent_tokens", seq_len)
    if positions != seq_len:
        raise ConfigError(f"data.seq_len={seq_len} but the autoencoder makes {positions} latent positions per "
                          f"example; set data.seq_len={positions}")
    if weights is not None:
        for nets in (module.net, module.ema.module):
            nets["autoencoder"].inner.load_state_dict(weights)
    if tokenizer is not None:
        module.net["autoencoder"].bind_tokenizer(tokenizer)
    module.run_info = make_run_info(cfg, tokenizer_json=tokenizer_json, vocab_size=vocab_size, seq_len=seq_len)
    return module


def distill(cfg: DictConfig, *, tokenizer, seq_len: int, teacher_ckpt: str, start_steps: int = 32,
            min_steps: int = 1, steps_per_round: int = 500, optimizer=None):
    """Progressive distillation of the flow in ``teacher_ckpt`` (textflow.training.distill)."""
    from textflow.training.distill import DistillModule

    loaded = load_run(teacher_ckpt, key="teacher_ckpt")
    if loaded.info["tokenizer"] != tokenizer.to_json():
        raise CheckpointError(f"teacher_ckpt={teacher_ckpt!r} was trained with another vocabulary "
                              f"(vocab_size={loaded.info['vocab_size']}) than this run's data "
                              f"(vocab_size={tokenizer.vocab_size}); use the teacher's data config")
    if int(loaded.info["seq_len"]) != int(seq_len):
        raise CheckpointError(f"teacher_ckpt={teacher_ckpt!r} was trained on blocks of {loaded.info['seq_len']} "
                              f"tokens; set data.seq_len={loaded.info['seq_len']}")
    export = Path(cfg.dirs.output_dir) / "checkpoints" / "distilled.ckpt"
    return DistillModule(teacher=loaded.module, teacher_ckpt=str(teacher_ckpt), export_path=str(export),
                         start_steps=start_steps, min_steps=min_steps, steps_per_round=steps_per_round,
                         optimizer=optimizer)
