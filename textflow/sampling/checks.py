"""The sampling run's own value checks, made before a checkpoint is loaded or a file written: one
line naming the value and the choices (docs/reliability.md)."""

from __future__ import annotations

from omegaconf import DictConfig

from textflow.checks import require_int
from textflow.errors import ConfigError


def check_counts(cfg: DictConfig) -> None:
    for key in ("num_samples", "batch_size"):
        require_int(key, cfg[key], low=1)
    require_int("seed", cfg.seed, low=0)
    require_int("print_samples", cfg.print_samples, low=0)
    if cfg.precision not in ("32", "bf16", 32):
        raise ConfigError(f"precision={cfg.precision!r} is not valid; choose one of: 32, bf16")


def check_steps_limit(steps: int, limit) -> None:
    limit = require_int("max_sampler_steps", limit, low=1)
    if steps > limit:
        raise ConfigError(f"sampler.steps={steps} is above max_sampler_steps={limit} (a guard against runs that "
                          f"take hours); pass max_sampler_steps={steps} to run it anyway")


def check_seq_len(value, trained: int) -> int:
    """``seq_len=null`` is the training length; a shorter integer is allowed, a longer one is not."""
    if value is None:
        return int(trained)
    return require_int("seq_len", value, low=1, high=int(trained), hint=f" (the checkpoint was trained on "
                       f"{trained}-token blocks; null = {trained})")
