"""What the training-time callbacks share: whether a module is a text flow they can sample from."""

from __future__ import annotations


def is_text_flow(pl_module) -> bool:
    """True for a flow module with a tokenizer whose readout kind decodes to token ids (the
    sample-logging callbacks; :mod:`textflow.readouts`)."""
    if not hasattr(pl_module, "denoiser") or not pl_module.run_info.get("tokenizer"):
        return False
    return pl_module.denoiser(use_ema=True).autoencoder.readout_kind.decodes_tokens
