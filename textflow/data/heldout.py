"""Held-out blocks of a checkpoint's own corpus, tokenized with its own tokenizer: the real text of
reference rows (docs/evaluation.md) and the data diagnostics measure on (docs/diagnostics.md)."""

from __future__ import annotations

import warnings

from hydra.utils import instantiate
from omegaconf import DictConfig


def heldout_blocks(corpus_cfg: DictConfig, tokenizer, *, seq_len: int, num: int) -> list[list[int]]:
    """``num`` evenly spaced blocks of ``seq_len`` token ids from the corpus's held-out split,
    tokenized with the model's own tokenizer. Returns [] (with a warning) if the corpus is unavailable.
    ``corpus_cfg`` comes from a checkpoint, already checked by :mod:`textflow.checkpoint.safe_config`.
    """
    try:
        docs = instantiate(corpus_cfg).documents("val")
    except Exception as err:  # the corpus may live on another machine; the reference row is optional
        warnings.warn(f"held-out reference text unavailable ({err}); skipping the reference row", stacklevel=2)
        return []
    stream: list[int] = []
    for ids in tokenizer.encode_batch([text for _, text in docs]):
        stream.extend(ids)
        stream.append(tokenizer.eos_id)
    n_blocks = len(stream) // seq_len
    if n_blocks == 0:
        return []
    picks = sorted({int(i * n_blocks / num) for i in range(min(num, n_blocks))})
    return [stream[i * seq_len:(i + 1) * seq_len] for i in picks]
