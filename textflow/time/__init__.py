"""Time distributions (conf/time): training-time sampling and K-step sampling grids, t in [0, 1]
with t = 0 noise and t = 1 data (docs/conventions.md)."""

from textflow.time.grids import LogitNormalTime, RandomLogitNormalTime, UniformTime, check_steps

__all__ = ["LogitNormalTime", "RandomLogitNormalTime", "UniformTime", "check_steps"]
