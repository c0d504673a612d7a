"""A sampler written down: on one line, ``"adaptive:levels=16:gamma=0.5"`` (a registry name and its knobs,
for command-line tools that compare several samplers in one call: ``python -m textflow.bench sampling
--samplers``, ``python -m textflow.sampling.fidelity --sampler / --reference``), or as a run's record
(``metrics.json``'s ``sampler``), rebuilt with the knobs it ran (docs/samplers.md)."""

from __future__ import annotations

import yaml


def parse_sampler(spec: str) -> tuple[str, dict]:
    """``"adaptive:levels=16:gamma=0.5"`` -> ``("adaptive", {"levels": 16, "gamma": 0.5})``: a registry
    name and its knobs (values read as YAML scalars, as on Hydra's command line: ``levels=null`` is None)."""
    name, *items = spec.split(":")
    knobs = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ValueError(f"sampler spec {spec!r}: {item!r} is not knob=value (e.g. adaptive:levels=16)")
        knobs[key] = yaml.safe_load(value)
    return name, knobs


# Knobs added after runs were recorded, with the value those runs used: a record without the knob ran it
# there, whatever the default is now (adaptive's closeness was continuous until levels existed).
KNOBS_BEFORE_THEY_EXISTED: dict[str, dict] = {"adaptive": {"levels": None}}


def recorded_knobs(record: dict) -> tuple[str, dict]:
    """``metrics.json``'s ``{"name": ..., knobs...}`` -> ``(name, knobs)`` as that run sampled: knobs the
    record predates take the value they had then (:data:`KNOBS_BEFORE_THEY_EXISTED`), not today's default."""
    knobs = dict(record)
    name = knobs.pop("name")
    return name, {**KNOBS_BEFORE_THEY_EXISTED.get(name, {}), **knobs}
