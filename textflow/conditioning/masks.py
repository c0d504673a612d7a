"""Random conditioning masks for training a conditional model (docs/conditioning.md; ELF trains
conditional generation with clean conditioning positions and condition dropout, arXiv 2606.30705).

Per training example, with probability ``prob`` some positions are given (clean, at per-token time 1,
outside the flow loss): a prefix (continuation) with probability ``prefix_share``, else one to three
random spans (infilling). With probability ``drop_prob`` a conditional example's given positions are
zeroed instead (condition dropout), which trains the unconditional branch that classifier-free
guidance (``sampler.cfg_scale``) subtracts. Draws come from the global torch RNG, which the training
step seeds from (run seed, step), so a resumed run draws the same masks (docs/reliability.md).
"""

from __future__ import annotations

import torch
from torch import Tensor

from textflow.checks import require_number


class ConditionMasks:
    """Args:
    prob: probability that an example is conditional (0 < prob <= 1).
    prefix_share: among conditional examples, the share with a prefix mask (the rest get spans).
    max_fraction: the most of a sequence that is given (0 < max_fraction < 1).
    drop_prob: condition-dropout probability among conditional examples (ELF's label drop).
    """

    MAX_SPANS = 3

    def __init__(self, *, prob: float = 0.5, prefix_share: float = 0.5, max_fraction: float = 0.5,
                 drop_prob: float = 0.1):
        self.prob = require_number("module.condition.prob", prob, low=0, high=1, low_open=True,
                                   hint=" (omit module.condition for an unconditional model)")
        self.prefix_share = require_number("module.condition.prefix_share", prefix_share, low=0, high=1)
        self.max_fraction = require_number("module.condition.max_fraction", max_fraction, low=0, high=1,
                                           low_open=True, high_open=True)
        self.drop_prob = require_number("module.condition.drop_prob", drop_prob, low=0, high=1, high_open=True)

    def sample(self, batch: int, length: int, *, device=None, generator=None) -> tuple[Tensor, Tensor]:
        """``(given (B, L) bool, dropped (B,) bool)``; ``dropped`` rows are conditional rows whose given
        positions are zeroed. Every row keeps at least one free position. Draws from ``generator``
        (on its device) when given, else from the global RNG."""
        longest = max(1, min(length - 1, int(self.max_fraction * length)))
        on = None if generator is None else generator.device

        def rand(*shape: int) -> Tensor:
            return torch.rand(*shape, generator=generator, device=on).cpu()

        conditional = rand(batch) < self.prob
        prefix = rand(batch) < self.prefix_share
        dropped = conditional & (rand(batch) < self.drop_prob)
        pos = torch.arange(length)
        # prefixes: 1..longest positions
        prefix_len = 1 + (rand(batch) * longest).long().clamp_max(longest - 1)
        given = pos < prefix_len.unsqueeze(1)
        # spans: 1..MAX_SPANS spans, each of 1..longest // spans positions, anywhere
        spans = 1 + (rand(batch) * self.MAX_SPANS).long().clamp_max(self.MAX_SPANS - 1)
        span_given = torch.zeros(batch, length, dtype=torch.bool)
        span_len_u, start_u = rand(batch, self.MAX_SPANS), rand(batch, self.MAX_SPANS)
        for k in range(self.MAX_SPANS):
            active = k < spans
            cap = (longest // spans).clamp_min(1)
            size = 1 + (span_len_u[:, k] * cap).long().clamp_max(cap - 1)
            start = (start_u[:, k] * (length - size + 1)).long().clamp_max(length - size)
            inside = (pos >= start.unsqueeze(1)) & (pos < (start + size).unsqueeze(1))
            span_given |= inside & active.unsqueeze(1)
        given = torch.where(prefix.unsqueeze(1), given, span_given) & conditional.unsqueeze(1)
        full = given.all(1)  # never give a whole row (overlapping spans cannot, but keep the rule explicit)
        given[full, -1] = False
        return given.to(device), dropped.to(device)

    def __repr__(self) -> str:
        return (f"ConditionMasks(prob={self.prob:g}, prefix_share={self.prefix_share:g}, "
                f"max_fraction={self.max_fraction:g}, drop_prob={self.drop_prob:g})")
