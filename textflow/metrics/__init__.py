"""Sample-quality metrics (diversity now; judge-LM perplexity arrives with the evaluation issue)."""

from textflow.metrics.text import distinct_n, repetition_rate, self_bleu, text_metrics, unigram_entropy

__all__ = ["distinct_n", "repetition_rate", "self_bleu", "text_metrics", "unigram_entropy"]
