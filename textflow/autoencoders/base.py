"""The latent-autoencoder interface every latent space implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from textflow.kernels import linear_cross_entropy
from textflow.noise import GeneratorArg
from textflow.readouts.base import ReadoutKind
from textflow.readouts.parallel import ParallelReadout
from textflow.types import Latents


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

    def flow_latents(self, ids: Tensor) -> Latents:
        """The clean latents the flow objective trains on: :meth:`encode`, with its graph (a decoder step
        trains through it). A latent space may hand them over in a cheaper exact form (the one-hot space:
        its token ids)."""
        return self.encode(ids)

    @abstractmethod
    def decode(self, latents: Tensor) -> Tensor:
        """Readout logits of latents."""

    @abstractmethod
    def loss(self, ids: Tensor, *, generator: GeneratorArg = None) -> dict[str, Tensor]:
        """The autoencoder's own training losses; key ``"loss"`` is the weighted total."""

    def bind_tokenizer(self, tokenizer) -> None:
        """Called once with the run's tokenizer (a REPA teacher needs the text behind the ids)."""

    def readout_flops(self, tokens: int) -> float:
        """Forward FLOPs of decoding ``tokens`` positions, for the benchmarks' model-FLOP counts
        (docs/benchmarks.md): one V x D matmul, ``2 V D`` per position, unless a readout says otherwise."""
        return 2.0 * self.vocab_size * self.latent_dim * tokens

    def readout_head(self, latents: Tensor) -> tuple[Tensor, Tensor, Tensor | None] | None:
        """The readout's last linear layer: ``(features, weight, bias)`` with
        ``decode(latents) == features @ weight.T + bias``, or None when the readout has no such form.
        Lets :meth:`readout_cross_entropy` score a large vocabulary without the logits tensor."""
        return None

    def readout_cross_entropy(self, latents: Tensor, ids: Tensor) -> tuple[Tensor, Tensor]:
        """``(mean CE, accuracy)`` of the readout at ``latents`` against ``ids``: chunked over positions
        through :meth:`readout_head` when the readout has one (docs/benchmarks.md, "Large vocabularies"),
        else from :meth:`decode`'s logits."""
        head = self.readout_head(latents)
        if head is not None:
            return linear_cross_entropy(*head, ids)
        logits = self.decode(latents)
        ce = F.cross_entropy(logits.flatten(0, 1).float(), ids.flatten())
        return ce, (logits.argmax(-1) == ids).float().mean()

    @torch.no_grad()
    def reconstruction_metrics(self, ids: Tensor) -> dict[str, Tensor]:
        """Clean round-trip quality, logged as ``val/<key>`` (token accuracy and CE for text)."""
        ce, acc = self.readout_cross_entropy(self.encode(ids), ids)
        return {"readout_ce": ce, "readout_acc": acc}
