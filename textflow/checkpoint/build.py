"""Build a model from a run config: the same code for a fresh run (train.py) and a checkpoint
(:func:`textflow.checkpoint.load.load_run`), plus the plain-data run info every checkpoint stores."""

from __future__ import annotations

from typing import Any, Mapping

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

FORMAT_VERSION = 1


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


# The config groups each kind of checkpoint stores (a kind not listed: the autoencoder and the data).
STORED_GROUPS = {"flow": ("autoencoder", "backbone", "path", "module", "data"), "ar_twin": ("backbone", "data")}


def make_run_info(cfg: DictConfig, *, tokenizer_json: str | None, vocab_size: int | None, seq_len: int,
                  kind: str = "flow", extra: Mapping[str, Any] | None = None) -> dict:
    """Plain-data run info stored in every checkpoint (``kind``: ``flow``, ``autoencoder`` or ``ar_twin``):
    the :data:`STORED_GROUPS` of ``kind`` from ``cfg``, resolved, plus the plain-data sections ``extra``
    (the AR twin's model spec)."""
    keys = STORED_GROUPS.get(kind, ("autoencoder", "data"))
    model_cfg = {k: OmegaConf.to_container(cfg[k], resolve=True) for k in keys if k in cfg}
    model_cfg.update(extra or {})
    return {
        "format": FORMAT_VERSION,
        "kind": kind,
        "config": OmegaConf.to_yaml(OmegaConf.create(model_cfg)),
        "tokenizer": tokenizer_json,
        "vocab_size": None if vocab_size is None else int(vocab_size),
        "seq_len": int(seq_len),
    }
