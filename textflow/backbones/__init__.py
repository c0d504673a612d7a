"""Backbones: networks ``f(z_t, t) -> output`` over per-token latents (B, L, D)."""

from textflow.backbones.dit import DiT

__all__ = ["DiT"]
