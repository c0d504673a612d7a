"""A DiT-style bidirectional transformer over per-token latents (Peebles & Xie 2023, "Scalable
Diffusion Models with Transformers", adaLN-Zero blocks, §3.2).

Time enters through adaptive layer norm: a sinusoidal embedding of ``t`` goes through an MLP to a
conditioning vector ``c`` that produces per-block shift / scale / gate (gates zero-initialised, so
every block starts as the identity). ``t`` may be (B,) or (B, L): per-token time is what committing
samplers need (docs/samplers.md, ``commit``), and adaLN handles it by modulating each position with its
own ``c``. Attention uses ``torch.nn.functional.scaled_dot_product_attention``.

Self-conditioning (``self_condition=True``; docs/samplers.md, "Self-conditioning and SC-CFG", as in
ELF, arXiv 2606.30705): the input projection reads ``[z, x_prev]`` concatenated on the feature axis
(``2 D`` features), where ``x_prev`` is a previous estimate of the clean latent ``x_hat`` (zeros when
absent). With ``self_condition=False`` the network, its parameters and its state-dict keys are exactly
those of the plain DiT.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from textflow.errors import ConfigError


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Sinusoidal features of ``t`` in [0, 1] (scaled by 1000 as in DDPM-style embeddings)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = 1000.0 * t.float().unsqueeze(-1) * freqs
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return F.pad(emb, (0, dim % 2))


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    return x * (1 + scale) + shift


class Attention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = rearrange(self.qkv(x), "b l (three h d) -> three b h l d", three=3, h=self.heads)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(rearrange(out, "b h l d -> b l (h d)"))


class DiTBlock(nn.Module):
    """Pre-norm transformer block with adaLN-Zero modulation from ``c`` (B, 1 or L, W)."""

    def __init__(self, width: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, width))
        self.ada = nn.Linear(width, 6 * width)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)

    def forward(self, x: Tensor, c: Tensor, index: Tensor | None = None) -> Tensor:
        """``c`` is (B, 1, W), or (U, W) distinct conditions gathered per token by ``index`` (B, L)."""
        mod = self.ada(F.silu(c))
        sh1, sc1, g1, sh2, sc2, g2 = (mod if index is None else mod[index]).chunk(6, dim=-1)
        x = x + g1 * self.attn(modulate(self.norm1(x), sh1, sc1))
        return x + g2 * self.mlp(modulate(self.norm2(x), sh2, sc2))


class DiT(nn.Module):
    """DiT over latents: ``forward(z (B, L, D), t (B,) | (B, L)) -> (B, L, D)``.

    Args:
        latent_dim: D, the autoencoder's latent width (train.py passes it from the autoencoder).
        max_len: longest sequence the learned position table covers.
        width, depth, heads, mlp_ratio: transformer size (presets in conf/backbone/).
        self_condition: also read a previous clean-latent estimate ``x_prev`` (B, L, D) beside ``z``
            (``forward(z, t, x_prev)``; zeros when ``x_prev`` is None). Its model must be trained with
            ``module.self_cond_prob > 0``.
    """

    def __init__(self, *, latent_dim: int, max_len: int, width: int = 256, depth: int = 4, heads: int = 4,
                 mlp_ratio: float = 4.0, self_condition: bool = False):
        super().__init__()
        if width % heads:
            raise ConfigError(f"backbone.width={width} must be divisible by backbone.heads={heads}")
        if not isinstance(self_condition, bool):
            raise ConfigError(f"backbone.self_condition={self_condition!r} is invalid; it must be true or false")
        self.latent_dim, self.max_len, self.width = latent_dim, max_len, width
        self.self_condition = self_condition
        self.proj_in = nn.Linear(2 * latent_dim if self_condition else latent_dim, width)
        self.pos = nn.Parameter(torch.randn(1, max_len, width) * 0.02)
        self.time_mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.blocks = nn.ModuleList(DiTBlock(width, heads, mlp_ratio) for _ in range(depth))
        self.norm_out = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.ada_out = nn.Linear(width, 2 * width)
        self.proj_out = nn.Linear(width, latent_dim)
        for layer in (self.ada_out, self.proj_out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, z: Tensor, t: Tensor, x_prev: Tensor | None = None) -> Tensor:
        b, length, d = z.shape
        if d != self.latent_dim or length > self.max_len:
            raise ValueError(f"DiT expects latents (B, <= {self.max_len}, {self.latent_dim}), got {tuple(z.shape)}")
        if self.self_condition:
            if x_prev is None:
                x_prev = torch.zeros_like(z)
            elif x_prev.shape != z.shape:
                raise ValueError(f"x_prev must have the shape of z {tuple(z.shape)}, got {tuple(x_prev.shape)}")
            inp = torch.cat([z, x_prev.to(z.dtype)], dim=-1)
        elif x_prev is not None:
            raise ValueError("x_prev was given to a DiT built without self_condition=True")
        else:
            inp = z
        index = None
        if t.dim() == 1:
            c = self.time_mlp(timestep_embedding(t, self.width).to(z.dtype)).unsqueeze(1)  # (B, 1, W)
        else:  # per-token time: condition on the few distinct times, then gather per token
            times, index = torch.unique(t, return_inverse=True)
            c = self.time_mlp(timestep_embedding(times, self.width).to(z.dtype))  # (U, W)
        h = self.proj_in(inp) + self.pos[:, :length]
        for block in self.blocks:
            h = block(h, c, index)
        out_mod = self.ada_out(F.silu(c))
        shift, scale = (out_mod if index is None else out_mod[index]).chunk(2, dim=-1)
        return self.proj_out(modulate(self.norm_out(h), shift, scale))
