"""textflow's two hand-written statistics checked against the well-kept libraries that define them
(docs/evaluation.md, "Hand-written, checked against the libraries"): the bootstrap percentile interval
against ``scipy.stats.bootstrap`` and sentence BLEU against NLTK's ``sentence_bleu``."""

from __future__ import annotations

import numpy as np
import pytest

from textflow.metrics.text import _bleu, self_bleu
from textflow.metrics.uncertainty import bootstrap_ci, ppl_statistic

scipy_stats = pytest.importorskip("scipy.stats")
nltk_bleu = pytest.importorskip("nltk.translate.bleu_score")


def test_bootstrap_percentile_interval_matches_scipy():
    """Gen-PPL rows (summed NLL, token count) resampled in pairs: the same percentile interval as scipy's
    (each is a Monte Carlo estimate from its own resamples, so they agree to about a percent)."""
    rng = np.random.default_rng(0)
    counts = rng.integers(40, 65, size=64).astype(float)
    nll = counts * rng.normal(6.5, 0.6, size=64)
    rows = np.stack([nll, counts], axis=1)
    ours = bootstrap_ci(rows, ppl_statistic, n_boot=8000, seed=1)
    ref = scipy_stats.bootstrap((nll, counts), lambda a, b: np.exp(a.sum() / b.sum()), paired=True,
                                vectorized=False, n_resamples=8000, confidence_level=0.95, method="percentile",
                                random_state=np.random.default_rng(2)).confidence_interval
    assert ours[0] == pytest.approx(ref.low, rel=0.01) and ours[1] == pytest.approx(ref.high, rel=0.01)
    point = ppl_statistic(rows)
    assert ours[0] < point < ours[1]
    means = bootstrap_ci(rng.normal(3.5, 0.3, size=64), np.mean, n_boot=8000, seed=3)
    assert (means[1] - means[0]) == pytest.approx(2 * 1.96 * 0.3 / 8, rel=0.15)  # the normal theory width


def test_sentence_bleu_matches_nltk_with_epsilon_smoothing():
    """BLEU-4 with Chen & Cherry's method 1 (epsilon 0.1) and the closest reference's brevity penalty,
    on token-id sequences of varied lengths, including a candidate with no n-gram in common at some n."""
    rng = np.random.default_rng(0)
    smoothing = nltk_bleu.SmoothingFunction(epsilon=0.1).method1
    for case in range(40):
        vocab = int(rng.integers(4, 30))
        cand = rng.integers(0, vocab, size=int(rng.integers(6, 40))).tolist()
        refs = [rng.integers(0, vocab, size=int(rng.integers(6, 40))).tolist() for _ in range(int(rng.integers(1, 5)))]
        ref = nltk_bleu.sentence_bleu(refs, cand, smoothing_function=smoothing)
        assert _bleu(cand, refs) == pytest.approx(ref, rel=1e-9, abs=1e-12), case
    disjoint = [1, 2, 3, 4, 5, 6]
    assert _bleu(disjoint, [[7, 8, 9, 10, 11, 12]]) == nltk_bleu.sentence_bleu(
        [[7, 8, 9, 10, 11, 12]], disjoint, smoothing_function=smoothing) == 0.0
    same = [[3, 1, 4, 1, 5, 9, 2, 6]] * 3
    assert self_bleu(same) == pytest.approx(1.0)
