"""CCI, the categorical commitment index (science.md §4): the fraction of a sequence's token decisions
committed (made discrete and fed back) strictly before the final readout, with the per-step curve."""

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



def cci_readout(autoencoder, length: int) -> float:
    """CCI of the readout itself (structural): an AR decoder that feeds back committed tokens commits
    all but the last before its final decision, (L - 1) / L; a parallel readout, or the AR decoder
    under the commit ablation (expected embeddings fed back), commits nothing: 0."""
    inner = getattr(autoencoder, "inner", autoencoder)  # a two-stage run wraps the autoencoder
    if inner.parallel_readout or getattr(inner, "feed", "token") != "token":
        return 0.0
    return cci_autoregressive(length)
