"""Token embeddings with a sharp linear readout (Diffusion-LM, Li et al. 2022; ELF, 2026).

Each token's latent is its embedding row rescaled to norm ``sqrt(D) * scale`` (so each coordinate
has roughly the scale of the unit prior). Normalising the rows prevents a collapse (docs/autoencoders.md:
embeddings trained through the flow loss shrink toward each other); the flow module
also stops the flow loss's gradient into the clean target, so embeddings and readout learn from
the readout cross-entropy alone. The readout is linear, trained on lightly noised latents
``x + s * eps`` with ``s ~ U(0, readout_noise)``, which widens the decision regions and sharpens it:

* ``tied`` (default): ``logits = tau * x E_hat^T + b`` with the unit-norm embedding rows ``E_hat``
  and a learned temperature ``tau``: a nearest-embedding (Voronoi) readout, exact on clean latents
  from the first step (LangFlow / Diffusion-LM style tied embeddings);
* ``linear``: an independent ``logits = x W^T + b`` learned from scratch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from textflow.autoencoders.base import LatentAutoencoder
from textflow.errors import ConfigError, check_choice
from textflow.kernels import linear_cross_entropy
from textflow.kernels.unit_rows import scaled_unit_rows
from textflow.noise import GeneratorArg, rand, randn


class EmbeddingAutoencoder(LatentAutoencoder):
    """Args:
    vocab_size: tokenizer vocabulary (train.py passes it from the data module).
    latent_dim: D.
    scale: per-coordinate RMS of every latent (row norm = scale * sqrt(D)).
    readout_noise: max std of the noise added to latents when training the readout.
    readout: ``tied`` (nearest embedding with learned temperature) or ``linear``.
    """

    def __init__(self, *, vocab_size: int, latent_dim: int = 64, scale: float = 1.0, readout_noise: float = 0.2,
                 readout: str = "tied"):
        super().__init__()
        if latent_dim < 1 or vocab_size < 2:
            raise ConfigError(f"autoencoder needs latent_dim >= 1 and vocab_size >= 2, got {latent_dim}, {vocab_size}")
        self.vocab_size, self.latent_dim = int(vocab_size), int(latent_dim)
        self.scale, self.readout_noise = float(scale), float(readout_noise)
        check_choice("autoencoder.readout", readout, ("tied", "linear"))
        self.readout_mode = readout
        self.embedding = nn.Embedding(self.vocab_size, self.latent_dim)
        nn.init.normal_(self.embedding.weight)
        if readout == "linear":
            self.readout = nn.Linear(self.latent_dim, self.vocab_size)
        else:
            self.log_temperature = nn.Parameter(torch.zeros(()))
            self.readout_bias = nn.Parameter(torch.zeros(self.vocab_size))

    def encode(self, ids: Tensor) -> Tensor:
        return F.normalize(self.embedding(ids), dim=-1) * (self.scale * math.sqrt(self.latent_dim))

    def readout_weights(self) -> tuple[Tensor, Tensor]:
        """``(W, b)`` of the linear readout ``logits = x W^T + b``; for ``tied``, ``W = tau * E_hat``
        (the temperature scales the V x D table, not the L x V logits; :mod:`textflow.kernels.unit_rows`
        computes it and its gradient in a few passes over the table)."""
        if self.readout_mode == "linear":
            return self.readout.weight, self.readout.bias
        return scaled_unit_rows(self.embedding.weight, self.log_temperature), self.readout_bias

    def decode(self, latents: Tensor) -> Tensor:
        weight, bias = self.readout_weights()
        return F.linear(latents, weight.to(latents.dtype), bias.to(latents.dtype))

    def readout_head(self, latents: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return (latents, *self.readout_weights())

    def loss(self, ids: Tensor, *, generator: GeneratorArg = None) -> dict[str, Tensor]:
        """The readout's cross-entropy on lightly noised clean latents (module docstring).

        ``tied``: the latents are read from the readout's own weight, ``W[ids] * sqrt(D) scale / tau`` (equal
        to :meth:`encode` up to float32 rounding), with a sparse gradient. The table then receives one
        table-sized gradient, through the weight's backward, where a lookup of ``E`` gave a second one to
        be summed with it (at 131,072 x 64, about 4 ms a step; docs/benchmarks.md, "Large vocabularies")."""
        if self.readout_mode == "tied":
            weight, bias = self.readout_weights()
            factor = self.scale * math.sqrt(self.latent_dim) / self.log_temperature.exp()
            x = F.embedding(ids, weight, sparse=True) * factor
        else:
            x = self.encode(ids)
        noise_std = rand((ids.shape[0], 1, 1), generator=generator, device=x.device) * self.readout_noise
        noisy = x + noise_std.to(x.dtype) * randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        if self.readout_mode == "tied":
            ce, acc = linear_cross_entropy(noisy, weight, bias, ids)
        else:
            ce, acc = self.readout_cross_entropy(noisy, ids)
        return {"loss": ce, "readout_ce": ce.detach(), "readout_acc": acc}
