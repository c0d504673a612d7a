"""Diversity metrics over token-id sequences.

Generative perplexity alone hides mode collapse (arXiv 2606.30705: ELF's K = 1 ODE has gen-PPL 3.07 at
entropy 2.01), so every textflow report pairs quality with these:

* ``unigram_entropy`` – entropy (nats) of each sample's own token histogram, averaged over samples
  (the convention of MDLM/Duo/ELF reports);
* ``distinct_n`` – unique n-grams / total n-grams pooled over all samples (Li et al. 2016);
* ``repetition_rate`` – per sample, 1 - unique n-grams / total n-grams (4-grams by default;
  Welleck et al. 2020's seq-rep-n), averaged;
* ``self_bleu`` – mean BLEU-4 of each sample against the others (Zhu et al. 2018): high = samples
  look alike.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Sequence

Seq = Sequence[int]


def _ngrams(seq: Seq, n: int) -> list[tuple]:
    return [tuple(seq[i:i + n]) for i in range(len(seq) - n + 1)]


def unigram_entropies(samples: Sequence[Seq]) -> list[float]:
    """Entropy (nats) of each non-empty sample's own token histogram."""
    values = []
    for seq in samples:
        if not len(seq):
            continue
        counts = Counter(seq)
        total = sum(counts.values())
        values.append(-sum(c / total * math.log(c / total) for c in counts.values()))
    return values


def unigram_entropy(samples: Sequence[Seq]) -> float:
    values = unigram_entropies(samples)
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


def text_metrics(samples: Sequence[Seq], *, self_bleu_n: int = 4) -> dict[str, float]:
    """The diversity block written to every metrics.json."""
    return {
        "unigram_entropy": unigram_entropy(samples),
        "distinct_1": distinct_n(samples, 1),
        "distinct_2": distinct_n(samples, 2),
        "distinct_3": distinct_n(samples, 3),
        "repetition_4": repetition_rate(samples, 4),
        "self_bleu": self_bleu(samples, self_bleu_n),
        "num_samples": len(samples),
    }


def _bleu(candidate: Seq, refs: Sequence[Seq], max_n: int = 4) -> float:
    """Sentence BLEU-``max_n`` of ``candidate`` against ``refs`` (Papineni et al. 2002) with the
    brevity penalty against the closest reference length and epsilon smoothing (0.1 / total) of zero
    n-gram matches (Chen & Cherry 2014, method 1); a candidate sharing no token with any reference scores
    0. NLTK's ``sentence_bleu`` with ``SmoothingFunction(epsilon=0.1).method1`` gives the same values
    (tests/test_metrics_references.py)."""
    cand = list(candidate)
    if not cand or not refs:
        return 0.0
    log_p = 0.0
    for n in range(1, max_n + 1):
        grams = Counter(_ngrams(cand, n))
        total = sum(grams.values())
        if total == 0:
            return 0.0
        best: Counter = Counter()
        for ref in refs:
            best |= Counter(_ngrams(list(ref), n))
        matched = sum(min(c, best[g]) for g, c in grams.items())
        if n == 1 and matched == 0:  # nothing in common: no smoothing makes it a match
            return 0.0
        log_p += math.log(matched / total if matched else 0.1 / total) / max_n
    closest = min((abs(len(r) - len(cand)), len(r)) for r in refs)[1]
    bp = 1.0 if len(cand) > closest else math.exp(1 - closest / len(cand))
    return bp * math.exp(log_p)


def self_bleu(samples: Sequence[Seq], max_n: int = 4) -> float:
    """Mean BLEU of each sample against all the others (Zhu et al. 2018, Texygen): 1 = all identical."""
    samples = [list(s) for s in samples]
    if len(samples) < 2:
        return 0.0
    scores = [_bleu(s, samples[:i] + samples[i + 1:], max_n) for i, s in enumerate(samples)]
    return float(sum(scores) / len(scores))
