"""Helpers shared by the entry points: one-line errors, device choice, component dicts, and the
pre-flight check of command-line overrides (:mod:`textflow.cli.preflight`)."""

from __future__ import annotations

import sys
from typing import Any, Callable

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from textflow.errors import ConfigError, TextflowError


def user_error(err: BaseException) -> TextflowError | None:
    """The :class:`TextflowError` behind ``err`` (Hydra wraps errors raised while instantiating)."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, TextflowError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def one_line(message: str) -> str:
    """``message`` on one line (a user error is always printed as exactly one line)."""
    return " ".join(message.split())


def in_multirun() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    except Exception:  # noqa: BLE001 - no Hydra context (tests, library use)
        return False


def guarded(task: Callable[[DictConfig], Any], cfg: DictConfig, *, on_sweep_error: Callable | None = None) -> Any:
    """Run ``task(cfg)``; a user error becomes one line on stderr and exit status 2.

    Inside a ``-m`` sweep one bad point must not end the others: the error is printed, handed to
    ``on_sweep_error(message)`` (which records it in the run folder) and the sweep goes on.
    """
    try:
        return task(cfg)
    except Exception as err:  # noqa: BLE001 - re-raised unless it is a user error
        found = user_error(err)
        if found is None:
            raise
        message = one_line(str(found))
        print(f"error: {message}", file=sys.stderr)
        if in_multirun():
            if on_sweep_error is not None:
                on_sweep_error(message)
            return None
        sys.exit(2)


def instantiate_dict(node: DictConfig | None) -> list:
    """Instantiate every child of ``node`` that has a ``_target_`` (callbacks, loggers)."""
    if not node:
        return []
    return [instantiate(child) for child in node.values() if isinstance(child, DictConfig) and "_target_" in child]


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ConfigError(f"device={name!r} is not valid; choose one of: auto, cpu, cuda, cuda:N")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} was asked for but no CUDA device is available; use device=cpu")
    return torch.device(name)
