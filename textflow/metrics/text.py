"""Diversity metrics over token-id sequences.

Generative perplexity alone hides mode collapse (science.md §5: ELF's K = 1 ODE has gen-PPL 3.07 at
entropy 2.01), so every textflow report pairs quality with these:

* ``unigram_entropy`` – entropy (nats) of each sample's own token histogram, averaged over samples
  (the convention of MDLM/Duo/ELF reports);
* ``distinct_n`` – unique n-grams / total n-grams pooled over all samples (Li et al. 2016);
* ``repetition_rate`` – per sample, 1 - unique n-grams / total n-grams (4-grams by default;
  Welleck et al. 2020's seq-rep-n), averaged.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Sequence

Seq = Sequence[int]


def _ngrams(seq: Seq, n: int) -> list[tuple]:
    return [tuple(seq[i:i + n]) for i in range(len(seq) - n + 1)]


def unigram_entropy(samples: Sequence[Seq]) -> float:
    values = []
    for seq in samples:
        if not len(seq):
            continue
        counts = Counter(seq)
        total = sum(counts.values())
        values.append(-sum(c / total * math.log(c / total) for c in counts.values()))
    return float(sum(values) / len(values)) if values else 0.0


def distinct_n(samples: Sequence[Seq], n: int) -> float:
    grams = [g for seq in samples for g in _ngrams(list(seq), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def repetition_rate(samples: Sequence[Seq], n: int = 4) -> float:
    rates = []
    for seq in samples:
        grams = _ngrams(list(seq), n)
        if grams:
            rates.append(1.0 - len(set(grams)) / len(grams))
    return float(sum(rates) / len(rates)) if rates else 0.0


def text_metrics(samples: Sequence[Seq]) -> dict[str, float]:
    """The diversity block written to every metrics.json."""
    return {
        "unigram_entropy": unigram_entropy(samples),
        "distinct_1": distinct_n(samples, 1),
        "distinct_2": distinct_n(samples, 2),
        "repetition_4": repetition_rate(samples, 4),
        "num_samples": len(samples),
    }
