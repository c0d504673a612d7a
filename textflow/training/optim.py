"""Learning-rate schedules. A schedule is a small class configured with its hyperparameters
(conf/module/*.yaml) and called with the optimizer in ``configure_optimizers``: ``schedule(optimizer)``.
It is a class, not a ``_partial_`` function, so a checkpoint's config names only classes
(docs/reliability.md)."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from textflow.checks import require_int, require_number


class WarmupCosine:
    """Linear warm-up for ``warmup_steps``, then cosine decay to ``min_ratio * lr`` at ``total_steps``."""

    def __init__(self, *, warmup_steps: int, total_steps: int, min_ratio: float = 0.1):
        self.warmup_steps = require_int("scheduler.warmup_steps", warmup_steps, low=0)
        self.total_steps = max(require_int("scheduler.total_steps", total_steps), 1)
        self.min_ratio = require_number("scheduler.min_ratio", min_ratio, low=0, high=1)

    def factor(self, step: int) -> float:
        warm, total = self.warmup_steps, self.total_steps
        if step < warm:
            return (step + 1) / warm
        progress = min((step - warm) / max(total - warm, 1), 1.0)
        return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    def __call__(self, optimizer: Optimizer) -> LambdaLR:
        return LambdaLR(optimizer, lambda step: self.factor(step))  # a plain function: not pickled into state
