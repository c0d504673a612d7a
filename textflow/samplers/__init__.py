"""Sampler registry (style.md convention 2). Importing this package registers every sampler."""

from textflow.samplers import commit, ode, sde, student  # noqa: F401  (registration side effect)
from textflow.samplers.configured import Sampler
from textflow.samplers.registry import SAMPLERS, get_sampler, register_sampler

__all__ = ["SAMPLERS", "Sampler", "get_sampler", "register_sampler"]
