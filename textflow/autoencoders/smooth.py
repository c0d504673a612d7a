"""The smooth, non-categorical control (docs/autoencoders.md; arXiv 2606.30705): an image autoencoder
with a continuous decoder (readout kind :class:`textflow.readouts.ContinuousReadout`).

The paper's dichotomy is that a *sharp* readout (text) amplifies few-step residuals along its decision
boundaries while a *smooth* decoder (images) does not. This autoencoder maps an 8x8 grey image
(64 pixels in [0, 1], scikit-learn's digits) to ``latent_tokens`` latent vectors of width
``latent_dim`` (so the same per-token DiT and samplers apply) and decodes them with an MLP; the loss
is pixel MSE on lightly noised latents ``z + s * eps``, ``s ~ U(0, latent_noise)``, which keeps the
decoder smooth around the data.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from textflow.autoencoders.base import LatentAutoencoder
from textflow.errors import ConfigError
from textflow.noise import GeneratorArg, rand, randn
from textflow.readouts.continuous import ContinuousReadout


class ImageAutoencoder(LatentAutoencoder):
    """Args:
    pixels: flattened image size (64 for 8x8 digits).
    latent_tokens: L, latent vectors per image.
    latent_dim: D, width of each latent vector.
    hidden: MLP width.
    latent_noise: max std of the noise added to latents during training.
    """

    readout_kind = ContinuousReadout()  # pixels, not logits: continuous metrics and the MSE DABI

    def __init__(self, *, pixels: int = 64, latent_tokens: int = 4, latent_dim: int = 4, hidden: int = 256,
                 latent_noise: float = 0.1, vocab_size: int | None = None):
        super().__init__()
        if min(pixels, latent_tokens, latent_dim, hidden) < 1 or latent_noise < 0:
            raise ConfigError(f"smooth autoencoder needs positive sizes and latent_noise >= 0; got pixels={pixels}, "
                              f"latent_tokens={latent_tokens}, latent_dim={latent_dim}, hidden={hidden}, "
                              f"latent_noise={latent_noise}")
        self.vocab_size = None  # not text
        self.pixels, self.latent_tokens, self.latent_dim = int(pixels), int(latent_tokens), int(latent_dim)
        self.latent_noise = float(latent_noise)
        width = self.latent_tokens * self.latent_dim
        self.encoder = nn.Sequential(nn.Linear(pixels, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                     nn.Linear(hidden, width))
        self.decoder = nn.Sequential(nn.Linear(width, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                     nn.Linear(hidden, pixels))

    def encode(self, images: Tensor) -> Tensor:
        """(B, pixels) -> (B, latent_tokens, latent_dim)."""
        return self.encoder(images).unflatten(-1, (self.latent_tokens, self.latent_dim))

    def decode(self, latents: Tensor) -> Tensor:
        """(B, latent_tokens, latent_dim) -> (B, pixels), pixel intensities."""
        return self.decoder(latents.flatten(-2))

    def readout_flops(self, tokens: int) -> float:
        """The decoder MLP's matmuls, once per image of ``latent_tokens`` positions."""
        per_image = sum(2 * m.in_features * m.out_features for m in self.decoder if isinstance(m, nn.Linear))
        return per_image * tokens / self.latent_tokens

    def loss(self, images: Tensor, *, generator: GeneratorArg = None) -> dict[str, Tensor]:
        z = self.encode(images)
        std = rand((images.shape[0], 1, 1), generator=generator, device=z.device) * self.latent_noise
        recon = self.decode(z + std.to(z.dtype) * randn(z.shape, generator=generator, device=z.device, dtype=z.dtype))
        mse = F.mse_loss(recon.float(), images.float())
        return {"loss": mse, "recon_mse": mse.detach()}

    @torch.no_grad()
    def reconstruction_metrics(self, images: Tensor) -> dict[str, Tensor]:
        return {"recon_mse": F.mse_loss(self.decode(self.encode(images)).float(), images.float())}
