"""Time distributions (conf/time): training-time sampling and K-step sampling grids, t in [0, 1]
with t = 0 noise and t = 1 data (docs/conventions.md)."""

from textflow.time.argmax import ArgmaxAccuracyTime
from textflow.time.grids import LogitNormalTime, RandomLogitNormalTime, UniformTime, check_steps, fit_time

__all__ = ["ArgmaxAccuracyTime", "LogitNormalTime", "RandomLogitNormalTime", "UniformTime", "check_steps", "fit_time"]
