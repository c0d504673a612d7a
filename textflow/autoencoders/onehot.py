"""One-hot latents: the latent of a token is its scaled one-hot vector (FLM, Lee et al. 2026, arXiv
2602.16813; docs/autoencoders.md, "The one-hot latent space").

``encode(ids) = scale * one_hot(ids)`` in D = V dimensions and the readout is the argmax: there is
nothing to train, no latent geometry to learn and no collapse to prevent. ``decode`` returns
``sharpness * latents / scale``, logits whose argmax is the readout and whose logit gap on a clean latent
is ``sharpness`` (so the clean readout cross-entropy is about ``V e^-sharpness``); they are linear in the
latents, so every sampler, diagnostic and report of the parallel readout works on them unchanged. The
readout has no V x D table to hand to the chunked kernels (it would be ``sharpness / scale`` times the
identity), so :meth:`readout_head` is None and the kernels use ``decode``'s logits, which are no larger
than the latents themselves.

The autoencoder names :class:`~textflow.autoencoders.prediction.SoftmaxPrediction` as its prediction head:
the backbone outputs V logits, ``x_hat = scale * softmax(logits)``, trained by token cross-entropy instead
of the MSE on ``x`` (FLM's objective).
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from textflow.autoencoders.base import LatentAutoencoder
from textflow.autoencoders.prediction import SoftmaxPrediction
from textflow.checks import require_int, require_number
from textflow.noise import GeneratorArg
from textflow.types import OneHotLatents


class OneHotAutoencoder(LatentAutoencoder):
    """Args:
    vocab_size: V, also the latent width (train.py passes it from the tokenizer).
    scale: the norm of a clean latent (FLM: 1, against a prior of norm ``sigma sqrt(V)``).
    sharpness: the readout's logit gap on a clean latent.
    latent_dim: not a free choice (the width is V); accepted so that presets written for the other
        latent spaces compose (``debug=fast`` sets 16); a value other than V is reported and not used.
    """

    one_hot = True  # latents are scale * one_hot(token): what time=flm reads (textflow.time.ArgmaxAccuracyTime.fit)

    def __init__(self, *, vocab_size: int, scale: float = 1.0, sharpness: float = 20.0,
                 latent_dim: int | None = None):
        super().__init__()
        self.vocab_size = require_int("autoencoder.vocab_size", vocab_size, low=2)
        self.latent_dim = self.vocab_size
        self.scale = require_number("autoencoder.scale", scale, low=0, low_open=True)
        self.sharpness = require_number("autoencoder.sharpness", sharpness, low=0, low_open=True)
        if latent_dim is not None and latent_dim != self.vocab_size:
            warnings.warn(f"autoencoder.latent_dim={latent_dim} is not used by the one-hot latent space: its width is "
                          f"the vocabulary size, {self.vocab_size}", stacklevel=2)
        self.prediction = SoftmaxPrediction(scale=self.scale)

    def encode(self, ids: Tensor) -> Tensor:
        """``scale * one_hot(ids)``, a dense (..., V) float tensor."""
        return self.flow_latents(ids).dense()

    def flow_latents(self, ids: Tensor) -> OneHotLatents:
        """The clean latents as their token ids: the flow objective adds and scores them without the
        (B, L, V) tensor (:class:`~textflow.types.OneHotLatents`)."""
        return OneHotLatents(ids=ids, scale=self.scale, vocab_size=self.vocab_size)

    def decode(self, latents: Tensor) -> Tensor:
        return latents * (self.sharpness / self.scale)

    def readout_flops(self, tokens: int) -> float:
        """One product per logit: the readout is a scaling, not a V x V matmul."""
        return float(self.vocab_size * tokens)

    def loss(self, ids: Tensor, *, generator: GeneratorArg = None) -> dict[str, Tensor]:
        """Nothing to train: a zero loss."""
        return {"loss": torch.zeros((), device=ids.device)}
