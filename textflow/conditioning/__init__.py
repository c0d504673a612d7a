"""Conditional generation (docs/conditioning.md): clean conditioning positions a sampler must keep
(a prompt to continue, the given text around spans to infill), classifier-free guidance on them, the
random conditioning masks a model is trained with, and the prompt templates ``sample.py`` reads."""

from textflow.conditioning.condition import Condition
from textflow.conditioning.conditioned import Conditioned
from textflow.conditioning.masks import ConditionMasks
from textflow.conditioning.prompts import parse_template, read_prompts

__all__ = ["Condition", "ConditionMasks", "Conditioned", "parse_template", "read_prompts"]
