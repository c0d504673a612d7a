"""The autoregressive baseline few-step samplers are measured against: a plain causal transformer LM
with a key/value cache (textflow.autoencoders.layers), generating one token per step.

It has the same width, depth, heads and MLP ratio as the DiT it is compared with, so both spend the
same per-token matmul FLOPs per network call (the DiT's adaLN acts once per sequence); at K steps the
flow makes K full-length calls, the AR model L single-token calls over a growing cache.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from textflow.autoencoders.layers import KVCache, Transformer


class CausalLM(nn.Module):
    """Token embedding -> causal :class:`Transformer` -> logits."""

    def __init__(self, *, vocab_size: int, width: int, depth: int, heads: int, mlp_ratio: float = 4.0,
                 max_len: int = 1024):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, width)
        self.body = Transformer(width=width, depth=depth, heads=heads, max_len=max_len, mlp_ratio=mlp_ratio)
        self.to_logits = nn.Linear(width, vocab_size)

    @torch.no_grad()
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
