"""Held-out real text as a reference row: the same metrics on real text, so every report shows where
real data sits beside the samples (docs/evaluation.md)."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from textflow.data.heldout import heldout_blocks
from textflow.readouts.reference_cache import cached


def reference_rows(cfg: DictConfig, loaded, evaluate, *, seq_len: int) -> tuple[dict[str, dict], list[str]]:
    """Held-out text and its shuffled-word version, evaluated like the samples (memoised per process):
    (``{"reference/heldout": ..., "reference/shuffled": ...}``, the held-out texts); empty with
    ``reference=false`` or without held-out text."""
    if not cfg.reference:
        return {}, []
    key = (str(loaded.path), seq_len, cfg.num_samples, cfg.seed, str(OmegaConf.to_yaml(cfg.evaluation)))
    return cached(key, lambda: _score_references(cfg, loaded, evaluate, seq_len=seq_len))


def _score_references(cfg: DictConfig, loaded, evaluate, *, seq_len: int) -> tuple[dict[str, dict], list[str]]:
    from textflow.evaluation.evaluate import shuffle_words
    from textflow.evaluation.judge import truncate_at_eos

    eos = loaded.tokenizer.eos_token
    blocks = heldout_blocks(loaded.config.data.corpus, loaded.tokenizer, seq_len=seq_len, num=cfg.num_samples)
    refs: dict[str, dict] = {}
    real = loaded.tokenizer.decode_batch(blocks) if blocks else []
    if blocks:
        refs["reference/heldout"] = evaluate(blocks, real, eos=eos)
        shuffled = shuffle_words([truncate_at_eos(t, eos) for t in real], seed=cfg.seed)
        refs["reference/shuffled"] = evaluate(loaded.tokenizer.encode_batch(shuffled), shuffled, eos=eos,
                                              reference_texts=real)
    return refs, real
