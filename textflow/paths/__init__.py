"""Probability paths (conf/path): how clean latents are noised, what the backbone predicts, and the
conversions between parameterisations (x-prediction, epsilon, v). Samplers see only these methods.
Conventions (t = 0 noise, t = 1 data) in docs/conventions.md."""

from textflow.paths.probability_paths import LinearPath, ProbPath, VPPath, expand_time

__all__ = ["LinearPath", "ProbPath", "VPPath", "expand_time"]
