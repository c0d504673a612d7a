"""Helpers shared by the two entry points: one-line errors, device choice, component dicts."""

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


def guarded(task: Callable[[DictConfig], Any], cfg: DictConfig) -> Any:
    """Run ``task(cfg)``; a user error becomes one line on stderr and exit status 2."""
    try:
        return task(cfg)
    except Exception as err:  # noqa: BLE001 - re-raised unless it is a user error
        found = user_error(err)
        if found is None:
            raise
        print(f"error: {found}", file=sys.stderr)
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
