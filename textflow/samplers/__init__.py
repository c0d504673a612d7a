"""Sampler registry (docs/adding_a_sampler.md). Importing this package registers every sampler."""

from textflow.samplers import commit, elf, ode, sde, student  # noqa: F401  (registration side effect)
from textflow.samplers.configured import Sampler
from textflow.samplers.registry import MODEL, SAMPLERS, Weights, get_sampler, register_sampler

__all__ = ["MODEL", "SAMPLERS", "Sampler", "Weights", "get_sampler", "register_sampler"]
