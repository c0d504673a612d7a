"""Baselines the flow's samplers are compared with (docs/evaluation.md, "The AR twin"; docs/benchmarks.md):
:class:`~textflow.baselines.causal_lm.CausalLM`, a KV-cached causal transformer LM of the DiT's size,
trained by ``train.py experiment=ar_twin`` (:mod:`textflow.training.ar_twin`) and timed by the bench."""

from textflow.baselines.causal_lm import CausalLM

__all__ = ["CausalLM"]
