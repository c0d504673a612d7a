"""The autoregressive baseline: a plain causal transformer LM over token ids with a key/value cache
(:mod:`textflow.autoencoders.layers`), generating one token per network call.

Two users: the throughput benchmark (``python -m textflow.bench scaling``, freshly initialised weights,
greedy :meth:`CausalLM.generate`) and the AR twin (``train.py experiment=ar_twin``,
:mod:`textflow.training.ar_twin`), a trained reference row beside the flow's samples
(``sample.py ar_twin=CKPT``, :mod:`textflow.sampling.ar_twin`; docs/evaluation.md, "The AR twin"),
sampled ancestrally by :meth:`CausalLM.sample`.

It has the width, depth, heads and MLP ratio of the DiT it is compared with, so both spend the same
per-token matmul FLOPs per network call (the DiT's adaLN acts once per sequence); at K steps the flow
makes K full-length calls, the AR model L single-token calls over a growing cache.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from textflow.autoencoders.layers import KVCache, Transformer
from textflow.checks import require_int, require_number
from textflow.errors import ConfigError
from textflow.kernels.linear import Linear, reuse_packed_weights

SPEC_KEYS = ("vocab_size", "width", "depth", "heads", "mlp_ratio", "max_len")


class CausalLM(nn.Module):
    """Token embedding -> causal :class:`Transformer` -> logits.

    Args:
        vocab_size: number of token ids.
        width, depth, heads, mlp_ratio: the transformer's size (the twinned DiT's).
        max_len: positions the model has (learned position embeddings).
    """

    def __init__(self, *, vocab_size: int, width: int, depth: int, heads: int, mlp_ratio: float = 4.0,
                 max_len: int = 1024):
        super().__init__()
        self.spec = {"vocab_size": int(vocab_size), "width": int(width), "depth": int(depth),
                     "heads": int(heads), "mlp_ratio": float(mlp_ratio), "max_len": int(max_len)}
        self.embedding = nn.Embedding(vocab_size, width)
        self.body = Transformer(width=width, depth=depth, heads=heads, max_len=max_len, mlp_ratio=mlp_ratio)
        self.to_logits = Linear(width, vocab_size)

    @classmethod
    def from_spec(cls, spec: Mapping) -> CausalLM:
        """A model from its :attr:`spec` (plain data, e.g. read from a checkpoint): every value is
        checked, a bad one is a one-line :class:`~textflow.errors.ConfigError` naming it."""
        missing = [k for k in SPEC_KEYS if k not in spec]
        if missing:
            raise ConfigError(f"the causal LM spec lacks {', '.join(missing)}")
        ints = {k: require_int(k, spec[k], low=1) for k in SPEC_KEYS if k != "mlp_ratio"}
        return cls(**ints, mlp_ratio=require_number("mlp_ratio", spec["mlp_ratio"], low=0, low_open=True))

    def forward(self, ids: Tensor) -> Tensor:
        """Next-token logits (B, L, V) of every position of ``ids`` (B, L), causally."""
        return self.to_logits(self.body(self.embedding(ids), causal=True))

    def loss(self, ids: Tensor, *, reduction: str = "mean") -> Tensor:
        """Next-token cross-entropy of blocks ``ids`` (B, L): ``ids[:, 1:]`` predicted from ``ids[:, :-1]``
        (mean over the B (L - 1) predicted tokens; ``reduction="sum"``: their sum)."""
        logits = self(ids[:, :-1])
        return F.cross_entropy(logits.flatten(0, 1).float(), ids[:, 1:].flatten(), reduction=reduction)

    @torch.no_grad()
    @reuse_packed_weights()  # each CPU weight reordered for oneDNN once per call (textflow.kernels.linear)
    def generate(self, prompt: Tensor, length: int, *, use_cache: bool = True) -> Tensor:
        """Greedy continuation of ``prompt`` (B, P) by ``length`` tokens (B, length)."""
        cache = KVCache(len(self.body.blocks)) if use_cache else None
        step_in, seq, out = prompt, prompt, []
        for _ in range(length):
            h = self.body(self.embedding(step_in), causal=True, cache=cache)
            token = self.to_logits(h[:, -1]).argmax(-1, keepdim=True)
            out.append(token)
            seq = torch.cat([seq, token], dim=1)
            step_in = token if use_cache else seq
        return torch.cat(out, dim=1)

    @torch.no_grad()
    @reuse_packed_weights()
    def sample(self, num: int, length: int, *, bos_id: int, generators: Sequence[torch.Generator],
               temperature: float = 1.0) -> Tensor:
        """Ancestral samples (num, length): ``bos_id`` at position 0, then ``length`` tokens, each drawn
        from ``softmax(logits / temperature)`` with the KV cache (``length`` network calls, positions
        ``0 .. length - 1``). Sample ``i`` draws only from ``generators[i]`` (one per sample, e.g.
        ``textflow.noise.per_sample_generators``), so it does not depend on the batch it is drawn in."""
        num = require_int("num", num, low=1)
        length = require_int("length", length, low=1, high=self.spec["max_len"],
                             hint=f" (the model has {self.spec['max_len']} positions)")
        bos_id = require_int("bos_id", bos_id, low=0, high=self.spec["vocab_size"] - 1)
        temperature = require_number("temperature", temperature, low=0, low_open=True,
                                     hint=" (1 = the model's own distribution)")
        generators = list(generators)
        if len(generators) != num:
            raise ValueError(f"got {len(generators)} per-sample generators for {num} samples")
        device = self.embedding.weight.device
        cache = KVCache(len(self.body.blocks))
        step_in = torch.full((num, 1), bos_id, dtype=torch.long, device=device)
        out = []
        for _ in range(length):
            h = self.body(self.embedding(step_in), causal=True, cache=cache)
            probs = torch.softmax(self.to_logits(h[:, -1]).float() / temperature, dim=-1)
            rows = [torch.multinomial(p.to(g.device), 1, generator=g) for p, g in zip(probs, generators)]
            step_in = torch.stack(rows).to(device)
            out.append(step_in)
        return torch.cat(out, dim=1)
