"""Evaluation: generative perplexity under an independent judge LM, diversity, uncertainty."""
