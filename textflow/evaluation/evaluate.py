"""One evaluation block for a set of samples or reference texts: diversity always, judge
perplexity when a judge is configured, bootstrap confidence intervals, and a mode-collapse flag
against held-out text (arXiv 2606.30705: low gen-PPL with low entropy is collapse, not quality)."""

from __future__ import annotations

import random
from typing import Optional, Sequence

import numpy as np

from textflow.metrics.text import text_metrics, unigram_entropies
from textflow.metrics.uncertainty import bootstrap_ci, ppl_statistic


def shuffle_words(texts: Sequence[str], *, seed: int = 0) -> list[str]:
    """The same words in a random order within each text (a reference row that keeps unigram
    statistics and destroys syntax)."""
    rng = random.Random(seed)
    out = []
    for text in texts:
        words = text.split()
        rng.shuffle(words)
        out.append(" ".join(words))
    return out


class Evaluator:
    """Args:
    judge: a :class:`textflow.evaluation.judge.JudgeLM`, or None for diversity only.
    n_boot, seed: bootstrap resamples for the CIs and their seed.
    collapse_ratio: flag mode collapse when entropy < collapse_ratio x the held-out entropy.
    mauve: also compute MAUVE against the reference texts (optional extra ``textflow[mauve]``).
    cache_dir: where MAUVE's MiniLM features model is cached.
    """

    def __init__(self, *, judge=None, n_boot: int = 1000, seed: int = 0, collapse_ratio: float = 0.75,
                 mauve: bool = False, cache_dir: str = "."):
        self.judge, self.n_boot, self.seed, self.collapse_ratio = judge, int(n_boot), int(seed), float(collapse_ratio)
        self.mauve, self.cache_dir = bool(mauve), str(cache_dir)

    def __call__(self, ids: Sequence[Sequence[int]], texts: Sequence[str], *, eos: Optional[str] = None,
                 reference_entropy: Optional[float] = None, reference_texts: Optional[Sequence[str]] = None) -> dict:
        out = text_metrics(ids)
        ent = unigram_entropies(ids)
        out["unigram_entropy_ci95"] = list(bootstrap_ci(ent, np.mean, n_boot=self.n_boot, seed=self.seed))
        # without a reference (sample.py reference=false) the flag is unknown: null, never a silent absence
        out["mode_collapse"] = (None if reference_entropy is None else
                                bool(out["unigram_entropy"] < self.collapse_ratio * reference_entropy))
        if self.judge is not None:
            score = self.judge.score(texts, eos=eos)
            rows = np.stack([score.nll_per_sample, score.tokens_per_sample], axis=1)
            out.update({"gen_ppl": score.gen_ppl,
                        "gen_ppl_ci95": list(bootstrap_ci(rows, ppl_statistic, n_boot=self.n_boot, seed=self.seed)),
                        "judge": score.judge, "judge_dtype": score.dtype, "judge_tokens": score.n_tokens})
        if self.mauve and reference_texts:
            from textflow.evaluation.judge import truncate_at_eos
            from textflow.evaluation.mauve import mauve_score

            out["mauve"] = mauve_score([truncate_at_eos(t, eos) for t in texts],
                                       [truncate_at_eos(t, eos) for t in reference_texts],
                                       cache_dir=self.cache_dir, seed=self.seed)
        return out
