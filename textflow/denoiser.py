"""The denoiser samplers are written against (see :class:`textflow.types.Denoiser`).

It binds a backbone, a path and an autoencoder: ``denoiser(z, t)`` runs the backbone once, counts
the call in ``nfe`` and converts the output to ``x_hat`` through the path, so samplers never see a
parameterisation (k-diffusion's ``Denoiser`` wrapper idea, crowsonkb/k-diffusion ``layers.py``).

A self-conditioned backbone (``backbone.self_condition=true``; docs/samplers.md, "Self-conditioning
and SC-CFG") also reads ``x_prev``, a previous estimate of the clean latent: ``denoiser(z, t, x_prev)``.
A backbone with scale tokens (``backbone.scale_tokens > 0``) also reads the SC-CFG scale:
``denoiser(z, t, x_prev, scale=w)`` (None = 1; docs/samplers.md, "Scale tokens").
``x_prev`` is always an ``x_hat`` in latent space, whatever the path predicts (training feeds the
first pass's output converted by ``path.to_x_hat``), so it is passed to the backbone unchanged; None
means zeros (no estimate). Samplers keep calling ``denoiser(z, t)``:
:class:`textflow.guidance.SelfConditioned` supplies ``x_prev`` and the SC-CFG combination.

The backbone's output becomes ``x_hat`` through the prediction head the autoencoder names
(:mod:`textflow.autoencoders.prediction`): ``path.to_x_hat(output)`` by default, ``scale * softmax(output)``
for the one-hot latent space (FLM, arXiv 2602.16813; docs/autoencoders.md).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from textflow.autoencoders.base import LatentAutoencoder
from textflow.autoencoders.prediction import prediction_of
from textflow.paths import ProbPath


class FlowDenoiser(nn.Module):
    """``x_hat = head.to_x_hat(backbone(z, t[, x_prev]), path, z, t)`` with the autoencoder's prediction head
    (``path.to_x_hat`` by default); ``nfe`` counts backbone calls.

    Args:
        backbone: network ``(z, t) -> output``.
        path: the probability path the backbone was trained on.
        autoencoder: provides ``readout`` (decode) and ``embed`` (encode).
        autocast_dtype: optional dtype for ``torch.autocast`` on the latents' device (bf16 on CUDA);
            outputs are returned in float32 so sampler arithmetic stays in full precision.
    """

    def __init__(self, *, backbone: nn.Module, path: ProbPath, autoencoder: LatentAutoencoder,
                 autocast_dtype: torch.dtype | None = None):
        super().__init__()
        self.backbone = backbone
        self.autoencoder = autoencoder
        self.path = path
        self.prediction = prediction_of(autoencoder)
        self.prediction.check(path, scale_tokens=int(getattr(backbone, "scale_tokens", 0)))
        self.autocast_dtype = autocast_dtype
        self.nfe = 0

    @property
    def self_conditioned(self) -> bool:
        """Whether the backbone reads a previous estimate ``x_prev`` (``backbone.self_condition``)."""
        return bool(getattr(self.backbone, "self_condition", False))

    @property
    def scale_range(self) -> tuple[float, float] | None:
        """The SC-CFG scales a scale-token backbone was trained on, None without scale tokens."""
        return getattr(self.backbone, "scale_range", None) if getattr(self.backbone, "scale_tokens", 0) else None

    @property
    def jumps(self) -> bool:
        """Whether the backbone is a flow map (``backbone.two_times``): it then also reads the step's
        target time, ``denoiser(z, s, t_next=t)`` (docs/samplers.md, "Flow-map students")."""
        return bool(getattr(self.backbone, "two_times", False))

    def forward(self, z: Tensor, t: Tensor, x_prev: Tensor | None = None, *, scale: float | None = None,
                t_next: Tensor | None = None) -> Tensor:
        """``x_hat`` at ``(z, t)``; a flow map's is the ``x_hat`` of its jump to ``t_next`` (the diagonal
        ``t_next = t`` when None), whose Euler step from ``t`` lands where the flow map sends ``z``."""
        if t.dim() == 0:
            t = t.expand(z.shape[0])
        if x_prev is not None and not self.self_conditioned:
            raise ValueError("x_prev was given to a denoiser whose backbone is not self-conditioned")
        if self.jumps:
            target = t if t_next is None else t_next.expand(z.shape[0]) if t_next.dim() == 0 else t_next
            args = (z, t, target)
        elif t_next is not None:
            raise ValueError("t_next was given to a denoiser whose backbone is not a flow map")
        else:
            args = (z, t, x_prev) if self.self_conditioned else (z, t)
        kwargs = {}
        if self.scale_range is not None:
            kwargs["scale"] = torch.full((z.shape[0],), 1.0 if scale is None else float(scale), device=z.device)
        elif scale is not None:
            raise ValueError("scale was given to a denoiser whose backbone has no scale tokens")
        self.nfe += 1
        if self.autocast_dtype is None:
            out = self.backbone(*args, **kwargs)
        else:
            with torch.autocast(device_type=z.device.type, dtype=self.autocast_dtype):
                out = self.backbone(*args, **kwargs)
        return self.prediction.to_x_hat(out.float(), self.path, z, t)

    def readout(self, x: Tensor) -> Tensor:
        return self.autoencoder.decode(x)

    def readout_head(self, x: Tensor):
        """The readout's last linear layer at ``x``, ``(features, W, b)``, or None (the autoencoder's
        :meth:`~textflow.autoencoders.LatentAutoencoder.readout_head`)."""
        return self.autoencoder.readout_head(x)

    def embed(self, ids: Tensor) -> Tensor:
        return self.autoencoder.encode(ids)
