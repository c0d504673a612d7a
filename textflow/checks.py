"""Value checks shared by every component: each raises a one-line :class:`~textflow.errors.ConfigError`
that names the key, the bad value and what is allowed (docs/reliability.md, "one line for every bad
value"). Booleans are never numbers here, and ``nan`` / ``inf`` are never valid knob values.
"""

from __future__ import annotations

import math
from typing import Optional

from textflow.errors import ConfigError


def require_int(key: str, value, *, low: Optional[int] = None, high: Optional[int] = None, hint: str = "") -> int:
    """``value`` as an int in ``[low, high]``; refuses floats (1.5 is not silently 1), strings and bools."""
    bounds = _bounds(low, high)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key}={value!r} is invalid; it must be an integer{bounds}{hint}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(f"{key}={value!r} is invalid; it must be an integer{bounds}{hint}")
    return int(value)


def require_number(key: str, value, *, low: Optional[float] = None, high: Optional[float] = None,
                   low_open: bool = False, high_open: bool = False, hint: str = "") -> float:
    """``value`` as a finite float in ``[low, high]`` (open at ``low`` with ``low_open``, at ``high`` with
    ``high_open``)."""
    bounds = _bounds(low, high, low_open=low_open, high_open=high_open)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{key}={value!r} is invalid; it must be a finite number{bounds}{hint}")
    below = value <= low if low_open else value < low if low is not None else False
    above = value >= high if high_open else value > high if high is not None else False
    if (low is not None and below) or (high is not None and above):
        raise ConfigError(f"{key}={value!r} is invalid; it must be a finite number{bounds}{hint}")
    return float(value)


def _bounds(low, high, *, low_open: bool = False, high_open: bool = False) -> str:
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {low}"
    if high is not None:
        return f" {'<' if high_open else '<='} {high}"
    return ""
