"""The latent-autoencoder interface every latent space implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from textflow.noise import GeneratorArg


class LatentAutoencoder(nn.Module, ABC):
    """Maps data (token ids (B, L), or images for the smooth control) to per-position latents
    (B, L, D) and latents back to a reconstruction: logits (B, L, V) for text.

    ``vocab_size`` and ``latent_dim`` are public attributes the rest of the pipeline reads
    (the backbone's width in/out, the checkpoint's vocabulary check). ``categorical`` says whether
    ``decode`` returns logits over a vocabulary (text) or a continuous reconstruction (images);
    readout diagnostics and text metrics apply only to categorical readouts. ``parallel_readout`` is
    False for a readout that decodes position by position (the AR decoder): too slow to call inside
    per-step diagnostics.
    """

    vocab_size: int
    latent_dim: int
    categorical: bool = True
    parallel_readout: bool = True

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
