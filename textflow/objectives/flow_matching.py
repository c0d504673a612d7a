"""The flow-matching loss (arXiv 2606.30705; docs/architecture.md, "Data flow") and its ELF variants
(docs/samplers.md, "Self-conditioning and SC-CFG" and "Scale tokens"; docs/conditioning.md).

With ``z_t = path.sample(x, t, eps)`` the loss is ``|| f(z_t, t[, x_prev][, w]) - target ||^2``:

* **self-conditioning** (``self_condition=True``): a first pass without gradient, ``f(z_t, t, 0)``,
  gives ``x_prev = path.to_x_hat(...)`` for the trained pass; otherwise ``x_prev = 0``;
* **scale tokens** (``scale`` given, one SC-CFG scale ``w`` per row): on a self-conditioning pass the
  target becomes ``target + (1 - 1/w) (f_sc - f_0)`` with both network terms detached (ELF's learned
  guidance): at its fixed point the network outputs ``f_0 + w (f_sc - f_0)`` in one call;
* **conditioning** (``given`` (B, L)): given positions hold the clean latents (zeros in ``dropped``
  rows: condition dropout) at per-token time 1, in ``z`` and in ``x_prev``, and are left out of the
  loss.

Without any variant this is exactly ``F.mse_loss(f(z_t, t), target)``.

The loss and the first pass's conversion to ``x_prev`` are the prediction head's
(:mod:`textflow.autoencoders.prediction`, ``head=``): the MSE and ``path.to_x_hat`` by default; for the
one-hot latent space (FLM, arXiv 2602.16813) the token cross-entropy of the output logits and
``scale * softmax``.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from textflow.autoencoders.prediction import MSE, MSEPrediction, SoftmaxPrediction, free_position_mse
from textflow.paths import ProbPath
from textflow.types import Latents, dense

__all__ = ["flow_matching_loss", "free_position_mse", "sample_guidance_scales"]


def sample_guidance_scales(batch: int, *, scale_range: tuple[float, float], device=None) -> Tensor:
    """(B,) SC-CFG scales, ``1 + w`` log-uniform on ``[1 + lo, 1 + hi]`` (ELF draws ``w`` this way, so
    scales near 0.5 are as well trained as those near 5)."""
    lo, hi = scale_range
    u = torch.rand(batch)
    return ((1 + lo) * torch.exp(u * math.log((1 + hi) / (1 + lo))) - 1).to(device)


def flow_matching_loss(backbone: nn.Module, path: ProbPath, *, x: Latents, t: Tensor, noise: Tensor,
                       self_condition: bool = False, scale: Optional[Tensor] = None,
                       given: Optional[Tensor] = None, dropped: Optional[Tensor] = None,
                       head: MSEPrediction | SoftmaxPrediction = MSE) -> Tensor:
    """The loss of one batch (module docstring). ``x`` are clean latents, already detached (the
    stop-gradient target; one-hot latents may come as their ids, :class:`~textflow.types.OneHotLatents`,
    which stay sparse unless conditioning positions or the dense loss need them); ``self_condition``
    asks for the first pass (a self-conditioned backbone is fed zeros otherwise); ``scale`` (B,) the
    scale-token scales; ``given`` (B, L) bool and ``dropped`` (B,) bool the conditioning positions and
    the rows whose condition is dropped; ``head`` the autoencoder's prediction head
    (:func:`textflow.autoencoders.prediction.prediction_of`)."""
    sample = path.sample(x, t, noise)
    z, times, restore = sample.z, t, None
    if given is not None:
        clean = dense(x)
        if dropped is not None:
            clean = clean.masked_fill((given & dropped.unsqueeze(1)).unsqueeze(-1), 0.0)

        def restore(y: Tensor) -> Tensor:
            return torch.where(given.unsqueeze(-1), clean.to(y.dtype), y)

        z = restore(z)
        times = torch.where(given, torch.ones_like(given, dtype=t.dtype), t.unsqueeze(-1).expand(given.shape))
    extra = {} if scale is None else {"scale": scale}
    output_head = scored_head(backbone, head, scale)
    trained = {"features": True} if output_head is not None else {}
    first = None
    if not getattr(backbone, "self_condition", False):
        out = backbone(z, times, **extra, **trained)
    else:
        blank = None if restore is None else restore(torch.zeros_like(z))
        x_prev = blank
        if self_condition:
            with torch.no_grad():
                first = backbone(z, times, blank, **extra)
                x_prev = head.to_x_hat(first.float(), path, z, times).to(z.dtype)
                x_prev = x_prev if restore is None else restore(x_prev)
        out = backbone(z, times, x_prev, **extra, **trained)
    if output_head is not None:  # the token cross-entropy, scored from the features in tiles
        return head.feature_loss(out, output_head, path.target(sample), given)
    target = dense(path.target(sample)).float()
    if scale is not None and first is not None:  # learned SC-CFG: both network terms detached
        target = target + (1 - 1 / scale).view(-1, 1, 1) * (out.detach().float() - first.float())
    return head.loss(out, target, given)


def scored_head(backbone: nn.Module, head, scale: Optional[Tensor]) -> nn.Linear | None:
    """The backbone's last projection when the loss can score its features directly (a head with
    ``feature_loss``, the one-hot latent's softmax, over a backbone with an ``output_head``, and no
    scale-token target, which mixes whole outputs); None otherwise. That keeps the (B, L, V) logits of a
    large vocabulary, their softmax and their gradient out of memory (docs/benchmarks.md, "Large
    vocabularies")."""
    if scale is not None or getattr(head, "feature_loss", None) is None:
        return None
    return getattr(backbone, "output_head", None)
