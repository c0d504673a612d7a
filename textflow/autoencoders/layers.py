"""Plain pre-norm transformer blocks for the autoencoders: bidirectional (VAE encoder / decoder) or
causal with a key/value cache (the latent-conditioned AR decoder). SDPA attention throughout."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from textflow.kernels.linear import GeluMLP, Linear


class KVCache:
    """Per-layer keys and values of the positions decoded so far (B, H, T, Dh)."""

    def __init__(self, depth: int):
        self.keys: list[Tensor | None] = [None] * depth
        self.values: list[Tensor | None] = [None] * depth

    def extend(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        if self.keys[layer] is not None:
            k = torch.cat([self.keys[layer], k], dim=2)
            v = torch.cat([self.values[layer], v], dim=2)
        self.keys[layer], self.values[layer] = k, v
        return k, v

    @property
    def length(self) -> int:
        return 0 if self.keys[0] is None else self.keys[0].shape[2]


class Block(nn.Module):
    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = Linear(width, 3 * width)
        self.proj = Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        hidden = int(width * mlp_ratio)
        self.mlp = GeluMLP(width, hidden)

    def forward(self, x: Tensor, *, causal: bool = False, cache: KVCache | None = None, layer: int = 0) -> Tensor:
        q, k, v = rearrange(self.qkv(self.norm1(x)), "b l (three h d) -> three b h l d", three=3, h=self.heads)
        if cache is not None:
            k, v = cache.extend(layer, k, v)
        # with a cache the new queries sit at the end: causal masking is only needed for >1 query
        is_causal = causal and q.shape[2] > 1
        if is_causal and k.shape[2] != q.shape[2]:
            raise ValueError("a cached causal step takes one new position at a time")
        out = F.scaled_dot_product_attention(q, k, v, is_causal=is_causal)
        x = x + self.proj(rearrange(out, "b h l d -> b l (h d)"))
        return x + self.mlp(self.norm2(x))


class Transformer(nn.Module):
    """A stack of :class:`Block` with learned positions and a final norm: (B, L, W) -> (B, L, W)."""

    def __init__(self, *, width: int, depth: int, heads: int, max_len: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(1, max_len, width))
        nn.init.normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(width)

    def forward(self, x: Tensor, *, causal: bool = False, cache: KVCache | None = None,
                return_layer: int | None = None) -> Tensor | tuple[Tensor, Tensor]:
        """``return_layer=k`` also returns the hidden states after block ``k`` (1-based; 0 = input)."""
        start = 0 if cache is None else cache.length
        if start + x.shape[1] > self.pos.shape[1]:
            raise ValueError(f"sequence of {start + x.shape[1]} positions exceeds max_len={self.pos.shape[1]}")
        x = x + self.pos[:, start:start + x.shape[1]]
        hidden = x
        for i, block in enumerate(self.blocks):
            x = block(x, causal=causal, cache=cache, layer=i)
            if return_layer == i + 1:
                hidden = x
        out = self.norm(x)
        return (out, hidden) if return_layer is not None else out
