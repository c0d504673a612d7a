"""Latent autoencoders: ``encode(ids) -> latents (B, L, D)`` and ``decode(latents) -> logits``."""

from textflow.autoencoders.base import LatentAutoencoder
from textflow.autoencoders.embed import EmbeddingAutoencoder

__all__ = ["LatentAutoencoder", "EmbeddingAutoencoder"]
