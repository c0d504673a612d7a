"""Guidance wrappers around a denoiser (docs/samplers.md, "Self-conditioning and SC-CFG"): they keep the
``denoiser(z, t)`` contract of :class:`textflow.types.Denoiser`, so every sampler runs them unchanged."""

from textflow.guidance.self_conditioning import SelfConditioned

__all__ = ["SelfConditioned"]
