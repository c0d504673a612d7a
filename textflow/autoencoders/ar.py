"""A latent-conditioned autoregressive decoder: the *categorical-commitment* readout
(arXiv 2606.30705; docs/autoencoders.md). Its readout kind is
:class:`textflow.readouts.AutoregressiveReadout`.

Encoder: token embedding -> bidirectional transformer -> per-token latent (B, L, D), layer-normalised
per token (zero mean, unit variance over D) so its scale matches the unit prior without a KL term.
Decoder: a causal transformer over the sequence ``[P z_1 .. P z_L, <s>, y_1 .. y_{L-1}]``: the
latents are a prefix every token position attends to (prefix conditioning), and token ``y_i`` is
predicted at the position of ``y_{i-1}``, whose input also carries ``Q z_i`` (a direct path to the
latent of the token being decided: without it the decoder first learns a plain language model and
only slowly learns to look the latent up by position; ``direct_latent=False`` removes that path, the
bottlenecked variant of ``experiment=ar_bottleneck``). Decoding commits one token at a time (greedy or sampled),
feeding each committed token back, with a key/value cache so step ``i`` costs one position, not
``L + i``. ``feed="soft"`` feeds the expected embedding ``softmax(logits) @ E`` instead of the
committed token: the commit ablation (docs/diagnostics.md, CCI).

Training is teacher-forced cross-entropy on lightly noised latents ``z + s * eps``, ``s ~ U(0,
latent_noise)``, so the decoder tolerates the small errors of a flow's samples.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from textflow.autoencoders.base import LatentAutoencoder
from textflow.autoencoders.layers import KVCache, Transformer
from textflow.errors import ConfigError, check_choice
from textflow.kernels.linear import Linear
from textflow.noise import GeneratorArg, rand, randn
from textflow.readouts.autoregressive import AutoregressiveReadout


class LatentARAutoencoder(LatentAutoencoder):
    """Args:
    vocab_size: tokenizer vocabulary (train.py passes it).
    latent_dim: D.
    width, encoder_depth, decoder_depth, heads: sizes.
    max_len: longest token sequence (the decoder sees 2 * max_len positions).
    latent_noise: max std of the noise on latents during training.
    use_cache: decode with the key/value cache (same tokens, fewer FLOPs).
    direct_latent: add ``Q z_i`` to the input that decides token ``i``. False leaves only the prefix, so
        the decoder must lean on its committed history (the commit ablation then has something to break).
    feed: what ``decode`` feeds back: ``token`` (the committed token) or ``soft`` (the commit ablation;
        sample.py readout_feed=soft sets it on a trained checkpoint).
    """

    readout_kind = AutoregressiveReadout()  # commits token by token: no per-step diagnostics, the commit ablation

    def __init__(self, *, vocab_size: int, latent_dim: int = 32, width: int = 256, encoder_depth: int = 2,
                 decoder_depth: int = 2, heads: int = 4, max_len: int = 1024, latent_noise: float = 0.2,
                 use_cache: bool = True, feed: str = "token", direct_latent: bool = True):
        super().__init__()
        if latent_dim < 1 or vocab_size < 2 or latent_noise < 0:
            raise ConfigError(f"ar needs latent_dim >= 1, vocab_size >= 2, latent_noise >= 0; got "
                              f"{latent_dim}, {vocab_size}, {latent_noise}")
        self.vocab_size, self.latent_dim = int(vocab_size), int(latent_dim)
        self.latent_noise, self.use_cache = float(latent_noise), bool(use_cache)
        check_choice("autoencoder.feed", feed, ("token", "soft"))
        self.feed = feed
        self.embedding = nn.Embedding(self.vocab_size, width)
        self.encoder = Transformer(width=width, depth=encoder_depth, heads=heads, max_len=max_len)
        self.to_latent = Linear(width, self.latent_dim)
        self.from_latent = Linear(self.latent_dim, width)
        self.token_embedding = nn.Embedding(self.vocab_size, width)
        self.start = nn.Parameter(torch.zeros(1, 1, width))
        self.direct_latent = bool(direct_latent)
        self.latent_at_token = Linear(self.latent_dim, width) if self.direct_latent else None
        self.decoder = Transformer(width=width, depth=decoder_depth, heads=heads, max_len=2 * max_len)
        self.to_logits = Linear(width, self.vocab_size)

    def encode(self, ids: Tensor) -> Tensor:
        z = self.to_latent(self.encoder(self.embedding(ids)))
        return F.layer_norm(z, (self.latent_dim,))

    def teacher_forced_logits(self, latents: Tensor, ids: Tensor) -> Tensor:
        """Logits of every token given the latents and the true previous tokens (one pass)."""
        prefix = self.from_latent(latents)
        previous = torch.cat([self.start.expand(ids.shape[0], 1, -1).to(prefix.dtype),
                              self.token_embedding(ids[:, :-1])], dim=1)
        inputs = torch.cat([prefix, previous + self._at_token(latents)], dim=1)
        h = self.decoder(inputs, causal=True)
        return self.to_logits(h[:, latents.shape[1]:])

    def _at_token(self, latents: Tensor) -> Tensor:
        """What the input deciding token i adds, (B, L, W): ``Q z_i``, or zeros without the direct path."""
        if self.direct_latent:
            return self.latent_at_token(latents)
        return latents.new_zeros(*latents.shape[:2], self.start.shape[-1])

    def _step_input(self, logits: Tensor, feed: str, temperature: float, generator: GeneratorArg) -> tuple:
        if feed == "soft":
            probs = logits.float().softmax(-1)
            return probs.argmax(-1), (probs @ self.token_embedding.weight.float()).to(logits.dtype)
        if temperature > 0:
            u = rand(logits.shape, generator=generator, device=logits.device).clamp_(1e-12, 1.0)
            token = (logits.float() / temperature - torch.log(-torch.log(u))).argmax(-1)  # Gumbel-max
        else:
            token = logits.argmax(-1)
        return token, self.token_embedding(token)

    @torch.no_grad()
    def generate(self, latents: Tensor, *, temperature: float = 0.0, feed: str | None = None,
                 generator: GeneratorArg = None, use_cache: bool | None = None) -> tuple[Tensor, Tensor]:
        """Commit ``L`` tokens one at a time: returns (tokens (B, L), per-step logits (B, L, V)).

        ``temperature = 0`` is greedy; otherwise tokens are sampled (Gumbel-max with ``generator``).
        ``feed="soft"`` is the commit ablation (expected embeddings fed back, nothing committed).
        """
        feed = self.feed if feed is None else feed
        check_choice("feed", feed, ("token", "soft"))
        use_cache = self.use_cache if use_cache is None else use_cache
        batch, length = latents.shape[:2]
        at_token = self._at_token(latents)  # (B, L, W): added to the input that decides token i
        start = self.start.expand(batch, 1, -1).to(latents.dtype) + at_token[:, :1]
        step_in = torch.cat([self.from_latent(latents), start], dim=1)
        cache = KVCache(len(self.decoder.blocks)) if use_cache else None
        tokens, logits = [], []
        for i in range(length):
            h = self.decoder(step_in, causal=True, cache=cache)
            step_logits = self.to_logits(h[:, -1])
            token, fed = self._step_input(step_logits, feed, temperature, generator)
            tokens.append(token)
            logits.append(step_logits)
            if i + 1 < length:
                nxt = (fed + at_token[:, i + 1])[:, None]
                step_in = nxt if use_cache else torch.cat([step_in, nxt], dim=1)
        return torch.stack(tokens, 1), torch.stack(logits, 1)

    def decode(self, latents: Tensor) -> Tensor:
        """Greedy commit-by-commit decoding (``feed`` decides what is fed back); the per-step logits."""
        return self.generate(latents)[1]

    def loss(self, ids: Tensor, *, generator: GeneratorArg = None) -> dict[str, Tensor]:
        z = self.encode(ids)
        std = rand((ids.shape[0], 1, 1), generator=generator, device=z.device) * self.latent_noise
        noisy = z + std.to(z.dtype) * randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
        logits = self.teacher_forced_logits(noisy, ids)
        ce = F.cross_entropy(logits.flatten(0, 1).float(), ids.flatten())
        return {"loss": ce, "readout_ce": ce.detach(), "readout_acc": (logits.argmax(-1) == ids).float().mean()}
