"""The denoiser samplers are written against (see :class:`textflow.types.Denoiser`).

It binds a backbone, a path and an autoencoder: ``denoiser(z, t)`` runs the backbone once, counts
the call in ``nfe`` and converts the output to ``x_hat`` through the path, so samplers never see a
parameterisation (k-diffusion's ``Denoiser`` wrapper idea, crowsonkb/k-diffusion ``layers.py``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from textflow.autoencoders.base import LatentAutoencoder
from textflow.paths import ProbPath


class FlowDenoiser(nn.Module):
    """``x_hat = path.to_x_hat(backbone(z, t), z, t)``; ``nfe`` counts backbone calls.

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
        self.autocast_dtype = autocast_dtype
        self.nfe = 0

    def forward(self, z: Tensor, t: Tensor) -> Tensor:
        if t.dim() == 0:
            t = t.expand(z.shape[0])
        self.nfe += 1
        if self.autocast_dtype is None:
            out = self.backbone(z, t)
        else:
            with torch.autocast(device_type=z.device.type, dtype=self.autocast_dtype):
                out = self.backbone(z, t)
        return self.path.to_x_hat(out.float(), z, t)

    def readout(self, x: Tensor) -> Tensor:
        return self.autoencoder.decode(x)

    def embed(self, ids: Tensor) -> Tensor:
        return self.autoencoder.encode(ids)
