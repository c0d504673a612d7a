"""A batch's conditioning positions: which are given, their tokens and their clean latents
(docs/conditioning.md; ELF's conditional generation, arXiv 2606.30705, restores them after every step).

Conditioning positions are data, so textflow feeds them to the network at per-token time ``t = 1``
(the commit sampler's convention for held tokens); ELF feeds them at the sequence's time. The
per-token time tells the network which positions are given, in training and in sampling alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Condition:
    """``mask`` (B, L) bool, True where the position is given; ``ids`` (B, L) the given token ids
    (anything where ``mask`` is False); ``latents`` (B, L, D) their clean latents (``encode(ids)``)."""

    mask: Tensor
    ids: Tensor
    latents: Tensor

    def __post_init__(self):
        if self.mask.dtype != torch.bool or self.mask.dim() != 2:
            raise ValueError(f"Condition.mask must be a (B, L) bool tensor, got {self.mask.dtype} "
                             f"{tuple(self.mask.shape)}")
        if self.ids.shape != self.mask.shape or self.latents.shape[:2] != self.mask.shape:
            raise ValueError(f"Condition shapes disagree: mask {tuple(self.mask.shape)}, ids {tuple(self.ids.shape)}, "
                             f"latents {tuple(self.latents.shape)}")

    def restore(self, z: Tensor) -> Tensor:
        """``z`` with the given positions replaced by their clean latents (``m c + (1 - m) z``)."""
        return torch.where(self.mask.unsqueeze(-1), self.latents.to(z.dtype), z)

    def blank(self, z: Tensor) -> Tensor:
        """``z`` with the given positions zeroed: the unconditional branch of CFG (what condition dropout
        trains)."""
        return z.masked_fill(self.mask.unsqueeze(-1), 0.0)

    def times(self, t: Tensor) -> Tensor:
        """Per-token times (B, L): ``t`` (B,) or (B, L) at free positions, 1 at given ones."""
        full = t.unsqueeze(-1).expand(self.mask.shape) if t.dim() == 1 else t
        return torch.where(self.mask, torch.ones_like(full), full)

    def restore_tokens(self, tokens: Tensor) -> Tensor:
        """Token ids with the given positions set to the given ids."""
        return torch.where(self.mask.to(tokens.device), self.ids.to(tokens.device), tokens)

    def to(self, device) -> "Condition":
        return Condition(mask=self.mask.to(device), ids=self.ids.to(device), latents=self.latents.to(device))

    @property
    def free(self) -> Tensor:
        """(B, L) bool: the positions a sampler generates."""
        return ~self.mask
