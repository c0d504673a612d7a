"""The commit ablation (arXiv 2606.30705, CCI; docs/diagnostics.md): run a committing
(autoregressive) decoder with soft inputs, the expected embedding ``softmax(logits) @ E`` of each step,
instead of the token it committed, and compare what it decodes. A decoder whose output depends on its
committed history should collapse (accuracy falls, output repeats or loses entropy); one that reads each
token off its own latent barely changes."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from textflow.metrics.text import distinct_n, unigram_entropy


@dataclass
class DecodeStats:
    feed: str
    token_acc: float  # agreement with the reference tokens (the text the latents encode)
    mean_confidence: float  # mean max-probability of the per-step distributions
    unigram_entropy: float  # of the decoded tokens, per sequence then averaged (metrics.text)
    distinct_1: float
    adjacent_repeat: float  # fraction of positions that repeat the previous token

    def as_dict(self) -> dict:
        return asdict(self)


def _stats(feed: str, tokens: Tensor, logits: Tensor, reference: Tensor) -> DecodeStats:
    seqs = tokens.tolist()
    return DecodeStats(feed=feed, token_acc=float((tokens == reference).float().mean()),
                       mean_confidence=float(logits.float().softmax(-1).amax(-1).mean()),
                       unigram_entropy=unigram_entropy(seqs), distinct_1=distinct_n(seqs, 1),
                       adjacent_repeat=float((tokens[:, 1:] == tokens[:, :-1]).float().mean()))


@torch.no_grad()
def commit_ablation(autoencoder, latents: Tensor, reference: Tensor) -> dict[str, DecodeStats]:
    """Greedy decodes of ``latents`` (B, L, D) with committed tokens fed back (``token``) and with
    expected embeddings fed back (``soft``, the ablation), each scored against ``reference`` (B, L).

    ``autoencoder`` must expose ``generate(latents, feed=...) -> (tokens, logits)`` (LatentARAutoencoder),
    and ``latents`` be in its own space: the autoregressive readout kind unwraps a two-stage flow's
    standardised latents first (:meth:`textflow.readouts.AutoregressiveReadout.commit_ablation`).
    """
    if not hasattr(autoencoder, "generate"):
        raise TypeError(f"the commit ablation needs an autoregressive decoder with generate(); got "
                        f"{type(autoencoder).__name__}")
    out = {}
    for feed in ("token", "soft"):
        tokens, logits = autoencoder.generate(latents, feed=feed, temperature=0.0)
        out[feed] = _stats(feed, tokens, logits, reference)
    return out
