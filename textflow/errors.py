"""User-facing errors.

Every error a user can cause with bad input (an unknown sampler, a negative gamma, a missing
checkpoint, an empty corpus, ...) is a :class:`TextflowError`. The entry points (``train.py``,
``sample.py``) print its message as one line and exit with status 2 instead of a traceback, so the
message itself must name the bad value and the valid choices.
"""

from __future__ import annotations


class TextflowError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class ConfigError(TextflowError, ValueError):
    """An invalid configuration value (names the key, the value and what is allowed)."""


class CheckpointError(TextflowError):
    """A missing, corrupt, unsafe or incompatible checkpoint."""


class DataError(TextflowError):
    """A corpus or tokenizer problem (empty corpus, missing files, unusable tokenizer)."""


def check_choice(key: str, value, choices) -> None:
    """Raise :class:`ConfigError` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"{key}={value!r} is not valid; choose one of: {', '.join(map(str, choices))}")
