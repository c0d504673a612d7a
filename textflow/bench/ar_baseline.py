"""The autoregressive baseline few-step samplers are measured against: the plain causal transformer
LM with a key/value cache, generating one token per step. It lives in :mod:`textflow.baselines`
(where the AR twin, ``train.py experiment=ar_twin``, trains it); this module keeps the bench's name."""

from __future__ import annotations

from textflow.baselines import CausalLM

__all__ = ["CausalLM"]
