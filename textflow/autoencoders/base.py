"""The latent-autoencoder interface every latent space implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

from torch import Tensor, nn

from textflow.noise import GeneratorArg


class LatentAutoencoder(nn.Module, ABC):
    """Maps token ids (B, L) to per-token latents (B, L, D) and latents back to logits (B, L, V).

    ``vocab_size`` and ``latent_dim`` are public attributes the rest of the pipeline reads
    (the backbone's width in/out, the checkpoint's vocabulary check).
    """

    vocab_size: int
    latent_dim: int

    @abstractmethod
    def encode(self, ids: Tensor) -> Tensor:
        """Clean latents of token ids."""

    @abstractmethod
    def decode(self, latents: Tensor) -> Tensor:
        """Readout logits of latents."""

    @abstractmethod
    def loss(self, ids: Tensor, *, generator: GeneratorArg = None) -> dict[str, Tensor]:
        """The autoencoder's own training losses; key ``"loss"`` is the weighted total."""
