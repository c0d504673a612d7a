"""Sampler registry (docs/adding_a_sampler.md). Importing this package registers every sampler."""

# importing a sampler's module registers it
from textflow.samplers import adaptive, commit, elf, flow_map, ode, sde, student  # noqa: F401
from textflow.samplers.configured import Sampler
from textflow.samplers.registry import MODEL, SAMPLERS, Weights, get_sampler, register_sampler

__all__ = ["MODEL", "SAMPLERS", "Sampler", "Weights", "get_sampler", "register_sampler"]
