"""CCI, the categorical commitment index (arXiv 2606.30705; docs/diagnostics.md): the fraction of a
sequence's token decisions committed (made discrete and fed back) strictly before the final readout, with
the per-step curve. A readout's own, structural CCI is its kind's ``cci_readout`` (:mod:`textflow.readouts`)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class CCI:
    value: float  # fraction committed before the last step
    curve: list[float]  # cumulative committed fraction after each step


def cci_from_commits(committed_step: Tensor | None, steps: int) -> CCI:
    """From a sampler's per-position commit record (-1 = never); None (ode / sde) gives CCI 0."""
    if committed_step is None:
        return CCI(value=0.0, curve=[0.0] * steps)
    committed = committed_step >= 0
    curve = [float((committed & (committed_step <= i)).float().mean()) for i in range(steps)]
    before_final = committed & (committed_step < steps - 1)
    return CCI(value=float(before_final.float().mean()), curve=curve)


def cci_autoregressive(length: int) -> float:
    """An autoregressive decoder commits every token but the last before its final readout."""
    return (length - 1) / length
