"""Exponential moving average of weights (Polyak averaging), kept as a frozen copy of the networks.

Validation, sample logging and ``sample.py`` read the EMA copy directly, so nothing is ever swapped
in and out of the trained weights (mdlm swaps; a copy is simpler and cannot be left half-swapped).
"""

from __future__ import annotations

import contextlib
import copy

import torch
from torch import nn


class EMA(nn.Module):
    """``shadow <- decay * shadow + (1 - decay) * online`` after every optimizer step.

    The first ``warmup`` updates use ``min(decay, (1 + n) / (10 + n))`` so early checkpoints are not
    dominated by the random initialisation.
    """

    def __init__(self, online: nn.Module, *, decay: float = 0.999):
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ema_decay={decay} is invalid; it must lie in [0, 1)")
        self.decay = float(decay)
        self.module = copy.deepcopy(online).requires_grad_(False).eval()
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, online: nn.Module, *, sharded_root: nn.Module | None = None) -> None:
        """``sharded_root``: the module that wraps both copies (``trainer.model``). Under FSDP
        (conf/trainer/fsdp.yaml) each wrapped block of the copy is sharded as its online twin, so
        their local shards pair up, but the root unit holds the rest of both copies in one flat
        parameter that no rank holds both halves of: it is gathered (and written back) for the update."""
        with _root_gathered(sharded_root):
            self._lerp(online)

    def _lerp(self, online: nn.Module) -> None:
        n = int(self.num_updates)
        decay = min(self.decay, (1 + n) / (10 + n))
        shadow = [p for p in self.module.parameters()]
        params = [p.detach() for p in online.parameters()]
        torch._foreach_lerp_(shadow, params, 1.0 - decay)
        for b_s, b_o in zip(self.module.buffers(), online.buffers()):
            b_s.copy_(b_o)
        self.num_updates += 1

    def train(self, mode: bool = True):  # the shadow copy always stays in eval mode
        super().train(False)
        return self


def _root_gathered(root: nn.Module | None):
    """The FSDP root's own parameters gathered whole (its wrapped blocks stay sharded); a no-op for any
    other module."""
    from torch.distributed.fsdp import FullyShardedDataParallel

    if not isinstance(root, FullyShardedDataParallel):
        return contextlib.nullcontext()
    return FullyShardedDataParallel.summon_full_params(root, recurse=False, writeback=True)
