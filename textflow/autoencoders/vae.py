"""A transformer VAE over tokens with a parallel decoder (TextLDM / Cola-style per-token latents).

Encoder: token embedding -> bidirectional transformer -> per-token Gaussian ``q(z|x) = N(mu, sigma^2)``
with ``z`` of width ``latent_dim``. Decoder: ``z`` -> bidirectional transformer -> logits, all
positions at once (a *parallel* readout, unlike :mod:`textflow.autoencoders.ar`). Loss (Kingma &
Welling 2014, eq. 3, with a KL weight beta as in beta-VAE):

    L = CE(decode(z), ids) + kl_weight * KL(q(z|x) || N(0, I))   (KL summed over D, mean over tokens)
      + repa_weight * L_repa                                      (textflow.autoencoders.repa)

``encode`` returns the posterior mean; the flow trains on it, normalised by the stored latent
statistics (two-stage training, textflow.training.autoencoder). With ``repa_weight = 0`` and ``repa_probe = true``
the projection head still trains, on detached states: a linear-probe measurement of alignment that
leaves the encoder untouched, so runs with and without REPA report a comparable cosine.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from textflow.autoencoders.base import LatentAutoencoder
from textflow.autoencoders.layers import Transformer
from textflow.autoencoders.repa import MINILM, TeacherStates, alignment_cosine
from textflow.errors import ConfigError
from textflow.kernels.linear import Linear
from textflow.noise import GeneratorArg, randn


class TransformerVAE(LatentAutoencoder):
    """Args:
    vocab_size: tokenizer vocabulary (train.py passes it).
    latent_dim: D of the per-token latent.
    width, depth, heads: encoder size; the decoder has ``decoder_depth`` blocks of the same width.
    max_len: longest sequence.
    kl_weight: beta.
    repa_weight: weight of the REPA loss (0 = off).
    repa_probe: with ``repa_weight = 0``, still fit the projection head on detached states.
    repa_teacher, repa_teacher_layer: teacher encoder (``minilm`` = offline MiniLM) and its layer.
    repa_layer: encoder block whose output is aligned (1-based).
    repa_dim: the teacher's hidden size (MiniLM: 384), checked when the teacher loads.
    repa_batch: sequences per training batch that the REPA loss uses (the teacher's forward pass is
        the costly part on a CPU; null = all).
    cache_dir: where the teacher wheel is unpacked.
    """

    def __init__(self, *, vocab_size: int, latent_dim: int = 32, width: int = 256, depth: int = 2,
                 decoder_depth: int = 2, heads: int = 4, max_len: int = 1024, kl_weight: float = 1e-4,
                 repa_weight: float = 0.0, repa_probe: bool = False, repa_teacher: str = MINILM,
                 repa_teacher_layer: int = -1, repa_layer: int = 1, repa_dim: int = 384,
                 repa_batch: int | None = None, cache_dir: str = ""):
        super().__init__()
        if latent_dim < 1 or vocab_size < 2 or kl_weight < 0 or repa_weight < 0:
            raise ConfigError(f"vae needs latent_dim >= 1, vocab_size >= 2, kl_weight >= 0, repa_weight >= 0; got "
                              f"{latent_dim}, {vocab_size}, {kl_weight}, {repa_weight}")
        if not 1 <= repa_layer <= depth:
            raise ConfigError(f"autoencoder.repa_layer={repa_layer} must be an encoder block in 1..{depth}")
        self.vocab_size, self.latent_dim = int(vocab_size), int(latent_dim)
        self.kl_weight, self.repa_weight, self.repa_layer = float(kl_weight), float(repa_weight), int(repa_layer)
        self.repa_batch = None if repa_batch is None else int(repa_batch)
        self.embedding = nn.Embedding(self.vocab_size, width)
        self.encoder = Transformer(width=width, depth=depth, heads=heads, max_len=max_len)
        self.to_posterior = Linear(width, 2 * self.latent_dim)
        self.from_latent = Linear(self.latent_dim, width)
        self.decoder = Transformer(width=width, depth=decoder_depth, heads=heads, max_len=max_len)
        self.to_logits = Linear(width, self.vocab_size)
        self.teacher = None
        if repa_weight > 0 or repa_probe:
            self.teacher = TeacherStates(name_or_path=repa_teacher, layer=repa_teacher_layer, cache_dir=cache_dir)
            self.repa_dim = int(repa_dim)
            self.repa_head = nn.Sequential(Linear(width, width), nn.SiLU(), Linear(width, self.repa_dim))

    def bind_tokenizer(self, tokenizer) -> None:
        if self.teacher is not None:
            self.teacher.bind(tokenizer)

    def posterior(self, ids: Tensor, *, return_layer: int | None = None):
        h = self.encoder(self.embedding(ids), return_layer=return_layer)
        h, hidden = h if return_layer is not None else (h, None)
        mu, logvar = self.to_posterior(h).chunk(2, dim=-1)
        return mu, logvar.clamp(-12, 6), hidden

    def encode(self, ids: Tensor) -> Tensor:
        return self.posterior(ids)[0]

    def decode(self, latents: Tensor) -> Tensor:
        return self.to_logits(self.decoder(self.from_latent(latents)))

    def readout_head(self, latents: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.decoder(self.from_latent(latents)), self.to_logits.weight, self.to_logits.bias

    def repa(self, hidden: Tensor, ids: Tensor) -> tuple[Tensor, Tensor]:
        """(REPA loss, alignment cosine) of encoder states ``hidden`` against the teacher."""
        if self.teacher.hidden_size != self.repa_dim:
            raise ConfigError(f"autoencoder.repa_dim={self.repa_dim} but teacher {self.teacher.name_or_path!r} has "
                              f"hidden size {self.teacher.hidden_size}; set autoencoder.repa_dim="
                              f"{self.teacher.hidden_size}")
        target, mask = self.teacher(ids)
        source = hidden if self.repa_weight > 0 else hidden.detach()
        cos = alignment_cosine(self.repa_head(source), target, mask)
        return -cos, cos.detach()

    def loss(self, ids: Tensor, *, generator: GeneratorArg = None) -> dict[str, Tensor]:
        mu, logvar, hidden = self.posterior(ids, return_layer=self.repa_layer if self.teacher else None)
        z = mu + (0.5 * logvar).exp() * randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        ce, acc = self.readout_cross_entropy(z, ids)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(-1).mean()
        out = {"readout_ce": ce.detach(), "kl": kl.detach(), "readout_acc": acc}
        total = ce + self.kl_weight * kl
        if self.teacher is not None:
            n = self.repa_batch or ids.shape[0]
            repa_loss, cos = self.repa(hidden[:n], ids[:n])
            # a probe (repa_weight = 0) trains only the head: its loss enters with weight 1 on detached states
            total = total + (self.repa_weight if self.repa_weight > 0 else 1.0) * repa_loss
            out["repa_cos"] = cos
        return {"loss": total, **out}

    @torch.no_grad()
    def reconstruction_metrics(self, ids: Tensor) -> dict[str, Tensor]:
        out = super().reconstruction_metrics(ids)
        if self.teacher is not None:
            _, _, hidden = self.posterior(ids, return_layer=self.repa_layer)
            out["repa_cos"] = self.repa(hidden, ids)[1]
        return out
