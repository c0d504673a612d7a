"""Reference rows: held-out real text, its shuffled-word version and the samples of reference models
(the AR twin, ``sample.py ar_twin=CKPT``: :mod:`textflow.sampling.ar_twin`), scored with the same
metrics as the samples, so every report shows where real data and a same-size autoregressive model sit
beside them (docs/evaluation.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from omegaconf import DictConfig, OmegaConf

from textflow.data.heldout import heldout_blocks
from textflow.readouts.reference_cache import cached


@dataclass
class ReferenceSamples:
    """A reference model's samples, reported as the row ``reference/<name>``.

    ``ids`` and ``texts`` are the samples (token ids and their decoded texts); ``key`` identifies them
    (what made them: the checkpoint path, length, count, seed, device) in the reference cache;
    ``stats`` (sampling speed and settings, plain data) are added to the row's metrics as they are.
    """

    ids: list[list[int]]
    texts: list[str]
    key: tuple
    stats: dict = field(default_factory=dict)


EXAMPLES = 3  # texts of each reference row kept in metrics.json, to read beside the samples


def reference_rows(cfg: DictConfig, loaded, evaluate, *, seq_len: int,
                   extra: Mapping[str, ReferenceSamples] | None = None) -> tuple[dict[str, dict], list[str]]:
    """Held-out text and its shuffled-word version (``reference=true``) and each reference model's
    samples in ``extra``, evaluated like the samples (memoised per process): (``{"reference/heldout": ...,
    "reference/shuffled": ..., "reference/<name>": ...}``, the held-out texts); the held-out rows are
    left out with ``reference=false`` or without held-out text."""
    extra = dict(extra or {})
    if not cfg.reference and not extra:
        return {}, []
    key = (str(loaded.path), seq_len, cfg.num_samples, cfg.seed, str(OmegaConf.to_yaml(cfg.evaluation)),
           bool(cfg.reference), tuple((name, extra[name].key) for name in sorted(extra)))
    return cached(key, lambda: _score_references(cfg, loaded, evaluate, seq_len=seq_len, extra=extra))


def _score_references(cfg: DictConfig, loaded, evaluate, *, seq_len: int,
                      extra: Mapping[str, ReferenceSamples]) -> tuple[dict[str, dict], list[str]]:
    from textflow.evaluation.evaluate import shuffle_words
    from textflow.evaluation.judge import truncate_at_eos

    eos = loaded.tokenizer.eos_token
    blocks = heldout_blocks(loaded.config.data.corpus, loaded.tokenizer, seq_len=seq_len,
                            num=cfg.num_samples) if cfg.reference else []
    refs: dict[str, dict] = {}
    real = loaded.tokenizer.decode_batch(blocks) if blocks else []
    if blocks:
        refs["reference/heldout"] = {**evaluate(blocks, real, eos=eos), "examples": real[:EXAMPLES]}
        shuffled = shuffle_words([truncate_at_eos(t, eos) for t in real], seed=cfg.seed)
        refs["reference/shuffled"] = {**evaluate(loaded.tokenizer.encode_batch(shuffled), shuffled, eos=eos,
                                                 reference_texts=real), "examples": shuffled[:EXAMPLES]}
    entropy = refs.get("reference/heldout", {}).get("unigram_entropy")
    for name, samples in extra.items():  # a model's samples: scored as the flow's are, beside held-out text
        scores = evaluate(samples.ids, samples.texts, eos=eos, reference_entropy=entropy,
                          reference_texts=real or None)
        refs[f"reference/{name}"] = {**scores, **samples.stats, "examples": samples.texts[:EXAMPLES]}
    return refs, real
