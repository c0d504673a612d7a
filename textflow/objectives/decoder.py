"""ELF's decoder objective (arXiv 2606.30705; docs/training.md, "Objectives"): train the readout by
cross-entropy on latents noised with a logit-normal time, so it reads noisy final latents well.

``x_lambda = lambda x + (1 - lambda) sigma_0 eps`` with one ``lambda ~ LogitNormal(mean, std)`` per token
(ELF's config: mean 0.8, std 0.8) and ``sigma_0`` the path's prior scale; the loss is the readout's
cross-entropy of the true tokens. In ELF the decoder is a head of the shared denoising network, told
its job by mode tokens; in textflow the readout is the autoencoder's own head, so it needs no mode
token: a decoder step trains the autoencoder, a flow step the backbone.
"""

from __future__ import annotations

import torch
from torch import Tensor


def decoder_loss(autoencoder, ids: Tensor, *, time, noise_scale: float,
                 latents: Tensor | None = None) -> Tensor:
    """Mean cross-entropy of the autoencoder's readout on the noised latents of ``ids`` (B, L); ``time``
    samples the per-token mixing weights (a :class:`textflow.time.LogitNormalTime`); ``latents`` are
    ``autoencoder.encode(ids)`` when the caller has them already (with their gradient)."""
    x = autoencoder.encode(ids) if latents is None else latents
    lam = time.sample(ids.numel(), device=ids.device).view(*ids.shape, 1).to(x.dtype)
    z = lam * x + (1 - lam) * noise_scale * torch.randn_like(x)
    return autoencoder.readout_cross_entropy(z, ids)[0]
