"""The latent-autoencoder interface every latent space implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from textflow.noise import GeneratorArg
from textflow.readouts.base import ReadoutKind
from textflow.readouts.parallel import ParallelReadout


class LatentAutoencoder(nn.Module, ABC):
    """Maps data (token ids (B, L), or images for the smooth control) to per-position latents
    (B, L, D) and latents back to a reconstruction: logits (B, L, V) for text.

    ``vocab_size`` and ``latent_dim`` are public attributes the rest of the pipeline reads
    (the backbone's width in/out, the checkpoint's vocabulary check). ``readout_kind`` is the kind of
    readout (:mod:`textflow.readouts`): how outputs are decoded, diagnosed and reported. The default is
    the sharp categorical readout that decodes every position at once; the AR decoder and the smooth
    control name their own kinds.
    """

    vocab_size: int
    latent_dim: int
    readout_kind: ReadoutKind = ParallelReadout()

    def unwrap(self) -> "LatentAutoencoder":
        """The autoencoder that decodes: itself (a two-stage wrapper returns the one it wraps)."""
        return self

    def to_unwrapped(self, latents: Tensor) -> Tensor:
        """``latents`` in the space of :meth:`unwrap`'s autoencoder (the identity here)."""
        return latents

    @abstractmethod
    def encode(self, ids: Tensor) -> Tensor:
        """Clean latents of token ids (deterministic: a VAE returns its posterior mean)."""

    @abstractmethod
    def decode(self, latents: Tensor) -> Tensor:
        """Readout logits of latents."""

    @abstractmethod
    def loss(self, ids: Tensor, *, generator: GeneratorArg = None) -> dict[str, Tensor]:
        """The autoencoder's own training losses; key ``"loss"`` is the weighted total."""

    def bind_tokenizer(self, tokenizer) -> None:
        """Called once with the run's tokenizer (a REPA teacher needs the text behind the ids)."""

    @torch.no_grad()
    def reconstruction_metrics(self, ids: Tensor) -> dict[str, Tensor]:
        """Clean round-trip quality, logged as ``val/<key>`` (token accuracy and CE for text)."""
        logits = self.decode(self.encode(ids))
        return {"readout_ce": F.cross_entropy(logits.flatten(0, 1).float(), ids.flatten()),
                "readout_acc": (logits.argmax(-1) == ids).float().mean()}
