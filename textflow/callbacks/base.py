"""What the training-time callbacks share: whether a module is a text flow they can sample from."""

from __future__ import annotations


def is_text_flow(pl_module) -> bool:
    """True for a flow module over a categorical (text) autoencoder (sample-logging callbacks)."""
    if not hasattr(pl_module, "denoiser") or not pl_module.run_info.get("tokenizer"):
        return False
    autoencoder = pl_module.denoiser(use_ema=True).autoencoder
    return autoencoder.categorical
