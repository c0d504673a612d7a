"""A trained autoencoder, frozen, with its latents standardised for the flow (two-stage training).

Latent spaces of a VAE or an AR encoder need not match the unit prior's scale; latent diffusion
standardises them with statistics of the training set (Rombach et al. 2022, §4.3.2 and App. G, the
"scale factor"; here per dimension):

    z = (encode(ids) - mean) / std,        decode(z) = inner.decode(z * std + mean)

``mean`` and ``std`` are buffers, so a flow checkpoint carries them and sampling needs nothing else.
The inner autoencoder's weights are frozen (no gradient, eval mode) and its training loss is not run.
Its readout kind is the inner autoencoder's (:mod:`textflow.readouts`): ``unwrap()`` gives the inner
autoencoder and ``to_unwrapped(z)`` the latents in its space, for readouts that decode through it
directly (the commit ablation of an AR decoder).
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor

from textflow.autoencoders.base import LatentAutoencoder
from textflow.errors import DataError
from textflow.noise import GeneratorArg
from textflow.readouts.base import ReadoutKind


class NormalizedAutoencoder(LatentAutoencoder):
    """Args:
    autoencoder: the trained (inner) autoencoder.
    vocab_size: accepted because train.py passes every autoencoder the data's; the inner one's is used.
    """

    def __init__(self, *, autoencoder: LatentAutoencoder, vocab_size: int | None = None):
        super().__init__()
        self.inner = autoencoder.requires_grad_(False).eval()
        self.vocab_size, self.latent_dim = getattr(autoencoder, "vocab_size", vocab_size), autoencoder.latent_dim
        if hasattr(autoencoder, "latent_tokens"):
            self.latent_tokens = autoencoder.latent_tokens
        self.register_buffer("mean", torch.zeros(self.latent_dim))
        self.register_buffer("std", torch.ones(self.latent_dim))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    @property
    def readout_kind(self) -> ReadoutKind:
        """The wrapped autoencoder's kind: standardising latents does not change the readout."""
        return self.inner.readout_kind

    def unwrap(self) -> LatentAutoencoder:
        return self.inner

    def readout_flops(self, tokens: int) -> float:
        return self.inner.readout_flops(tokens)

    def to_unwrapped(self, latents: Tensor) -> Tensor:
        """Standardised latents back in the inner autoencoder's space: ``z * std + mean``."""
        return latents * self.std.to(latents.dtype) + self.mean.to(latents.dtype)

    def train(self, mode: bool = True):
        super().train(mode)
        self.inner.eval()  # frozen: dropout / noise never switch on
        return self

    def bind_tokenizer(self, tokenizer) -> None:
        self.inner.bind_tokenizer(tokenizer)

    def set_statistics(self, mean: Tensor, std: Tensor) -> None:
        self.mean.copy_(mean)
        self.std.copy_(std.clamp_min(1e-6))
        self.fitted.fill_(True)

    @torch.no_grad()
    def fit_statistics(self, batches: Iterable[Tensor], *, max_batches: int = 64,
                       device: torch.device | str = "cpu") -> None:
        """Per-dimension mean and std of the inner latents over the first ``max_batches`` batches
        (train.py passes the training blocks in order, so the statistics are reproducible)."""
        total, count = torch.zeros(self.latent_dim, dtype=torch.float64), 0
        sq = torch.zeros_like(total)
        for i, batch in enumerate(batches):
            if i >= max_batches:
                break
            z = self.inner.encode(batch.to(device)).double().flatten(0, -2).cpu()
            total += z.sum(0)
            sq += z.pow(2).sum(0)
            count += z.shape[0]
        if count == 0:
            raise DataError("cannot fit latent statistics: the training data yielded no batch")
        mean = total / count
        std = (sq / count - mean.pow(2)).clamp_min(0).sqrt()
        self.set_statistics(mean.float().to(self.mean.device), std.float().to(self.std.device))

    def encode(self, ids: Tensor) -> Tensor:
        with torch.no_grad():
            return (self.inner.encode(ids) - self.mean) / self.std

    def decode(self, latents: Tensor) -> Tensor:
        return self.inner.decode(self.to_unwrapped(latents))

    def readout_head(self, latents: Tensor) -> tuple[Tensor, Tensor, Tensor | None] | None:
        return self.inner.readout_head(self.to_unwrapped(latents))

    def loss(self, ids: Tensor, *, generator: GeneratorArg = None) -> dict[str, Tensor]:
        return {"loss": torch.zeros((), device=self.mean.device)}

    def reconstruction_metrics(self, batch: Tensor) -> dict[str, Tensor]:
        """The round trip only (stage-one extras such as a REPA teacher's cosine are not re-measured)."""
        if self.inner.readout_kind.decodes_tokens:
            return LatentAutoencoder.reconstruction_metrics(self.inner, batch)
        return self.inner.reconstruction_metrics(batch)
