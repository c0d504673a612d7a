"""Latent autoencoders: ``encode(data) -> latents (B, L, D)`` and ``decode(latents) -> reconstruction``.

The zoo (conf/autoencoder/): ``embed`` (token embeddings, sharp linear readout), ``vae`` (transformer
VAE, parallel decoder, optional REPA), ``ar`` (latent-conditioned autoregressive decoder: categorical
commitment), ``frozen_embed`` (frozen pretrained embeddings + bottleneck) and ``smooth`` (an image
autoencoder: the non-text control). ``NormalizedAutoencoder`` wraps a stage-one autoencoder for the flow.
Each names its kind of readout in ``readout_kind`` (:mod:`textflow.readouts`; the wrapper delegates).
"""

from textflow.autoencoders.ar import LatentARAutoencoder
from textflow.autoencoders.base import LatentAutoencoder
from textflow.autoencoders.embed import EmbeddingAutoencoder
from textflow.autoencoders.frozen import FrozenEmbeddingAutoencoder
from textflow.autoencoders.normalized import NormalizedAutoencoder
from textflow.autoencoders.onehot import OneHotAutoencoder
from textflow.autoencoders.smooth import ImageAutoencoder
from textflow.autoencoders.vae import TransformerVAE

__all__ = ["EmbeddingAutoencoder", "FrozenEmbeddingAutoencoder", "ImageAutoencoder", "LatentARAutoencoder",
           "LatentAutoencoder", "NormalizedAutoencoder", "OneHotAutoencoder", "TransformerVAE"]
