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

Scale tokens (``scale_tokens=n > 0``; docs/samplers.md, "Scale tokens"; ELF's in-context SC-CFG): ``n``
learned tokens carrying the SC-CFG scale ``w`` (a sinusoidal feature of ``log(1 + w)`` through an MLP,
added to each token's learned base) are prepended to the sequence and dropped from the output; they
are modulated by the scale's feature instead of the time's. Trained with ``w`` drawn log-uniformly
(``1 + w`` in ``[1 + lo, 1 + hi]`` of ``scale_range``), the network learns the guided estimate, so a
guided sampling step costs one call.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from textflow.checks import require_int
from textflow.errors import ConfigError
from textflow.kernels.linear import GeluMLP, Linear


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Sinusoidal features of ``t`` in [0, 1] (scaled by 1000 as in DDPM-style embeddings)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = 1000.0 * t.float().unsqueeze(-1) * freqs
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return F.pad(emb, (0, dim % 2))


def check_scale_range(scale_range) -> tuple[float, float]:
    """``(lo, hi)`` with ``0 < lo <= 1 <= hi``, finite: the guided target's ``1 - 1/w`` needs ``w > 0``,
    and ``w = 1`` (plain self-conditioning, what the training callbacks sample) must be trained."""
    try:
        lo, hi = (float(v) for v in scale_range)
        valid = math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= 1 <= hi and lo < hi
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ConfigError(f"backbone.scale_range={scale_range!r} is invalid; it must be [lo, hi] with "
                          f"0 < lo <= 1 <= hi (ELF: [0.5, 5])")
    return lo, hi


def gather_rows(table: Tensor, index: Tensor) -> Tensor:
    """``table[index]`` for a (U, C) table and an integer index (B, L), as ``index_select``: the same
    values, and a backward that is an ``index_add`` rather than advanced indexing's accumulate-put."""
    return table.index_select(0, index.reshape(-1)).view(*index.shape, table.shape[-1])


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """adaLN's ``x (1 + scale) + shift`` in one pass over ``x`` (``addcmul``; docs/benchmarks.md, "Sampling
    at the machine's limit")."""
    return torch.addcmul(shift, x, 1 + scale)


class Attention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = Linear(width, 3 * width)
        self.proj = Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        # views into the qkv projection (no copy): SDPA takes (b, h, l, d) with any strides
        q, k, v = self.qkv(x).unflatten(-1, (3, self.heads, -1)).permute(2, 0, 3, 1, 4).unbind(0)
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
        self.mlp = GeluMLP(width, hidden)
        self.ada = Linear(width, 6 * width)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)

    def forward(self, x: Tensor, c: Tensor, index: Tensor | None = None) -> Tensor:
        """``c`` is (B, 1, W), or (U, W) distinct conditions gathered per token by ``index`` (B, L)."""
        mod = self.ada(F.silu(c))
        sh1, sc1, g1, sh2, sc2, g2 = (mod if index is None else gather_rows(mod, index)).chunk(6, dim=-1)
        # gated residuals ``x + g * f(x)`` as one ``addcmul`` pass each (docs/benchmarks.md)
        x = torch.addcmul(x, g1, self.attn(modulate(self.norm1(x), sh1, sc1)))
        return torch.addcmul(x, g2, self.mlp(modulate(self.norm2(x), sh2, sc2)))


class DiT(nn.Module):
    """DiT over latents: ``forward(z (B, L, D), t (B,) | (B, L)) -> (B, L, D)``.

    Args:
        latent_dim: D, the autoencoder's latent width (train.py passes it from the autoencoder).
        max_len: longest sequence the learned position table covers.
        width, depth, heads, mlp_ratio: transformer size (presets in conf/backbone/).
        self_condition: also read a previous clean-latent estimate ``x_prev`` (B, L, D) beside ``z``
            (``forward(z, t, x_prev)``; zeros when ``x_prev`` is None). Its model must be trained with
            ``module.self_cond_prob > 0``.
        scale_tokens: number of SC-CFG scale tokens (0 = none); needs ``self_condition``.
        scale_range: the ``(lo, hi)`` scales training draws from (ELF: 0.5 to 5); sampling refuses others.
    """

    def __init__(self, *, latent_dim: int, max_len: int, width: int = 256, depth: int = 4, heads: int = 4,
                 mlp_ratio: float = 4.0, self_condition: bool = False, scale_tokens: int = 0,
                 scale_range: tuple = (0.5, 5.0)):
        super().__init__()
        if width % heads:
            raise ConfigError(f"backbone.width={width} must be divisible by backbone.heads={heads}")
        if not isinstance(self_condition, bool):
            raise ConfigError(f"backbone.self_condition={self_condition!r} is invalid; it must be true or false")
        self.latent_dim, self.max_len, self.width = latent_dim, max_len, width
        self.self_condition = self_condition
        self.scale_tokens = require_int("backbone.scale_tokens", scale_tokens, low=0, hint=" (0 = no scale tokens)")
        if self.scale_tokens and not self_condition:
            raise ConfigError(f"backbone.scale_tokens={scale_tokens} needs backbone.self_condition=true "
                              f"(they carry the self-conditioning guidance scale)")
        self.scale_range = check_scale_range(scale_range)
        self.proj_in = Linear(2 * latent_dim if self_condition else latent_dim, width)
        self.pos = nn.Parameter(torch.randn(1, max_len, width) * 0.02)
        self.time_mlp = nn.Sequential(Linear(width, width), nn.SiLU(), Linear(width, width))
        self.blocks = nn.ModuleList(DiTBlock(width, heads, mlp_ratio) for _ in range(depth))
        self.norm_out = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.ada_out = Linear(width, 2 * width)
        self.proj_out = Linear(width, latent_dim)
        if self.scale_tokens:
            self.scale_base = nn.Parameter(torch.randn(1, self.scale_tokens, width) * 0.02)
            self.scale_mlp = nn.Sequential(Linear(width, width), nn.SiLU(), Linear(width, width))
        for layer in (self.ada_out, self.proj_out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def scale_features(self, scale: Tensor) -> Tensor:
        """(B, W) condition of the scale tokens: ``log(1 + w) / log(1 + hi)`` lies in [0, 1] on the
        trained range, the interval the sinusoidal features are made for."""
        unit = torch.log1p(scale.float()) / math.log1p(self.scale_range[1])
        return self.scale_mlp(timestep_embedding(unit, self.width))

    @property
    def output_head(self) -> nn.Linear:
        """The last projection, ``features (W) -> output (D)``: ``forward(..., features=True)`` stops before
        it, so a loss over a wide output (the one-hot latent's V logits) can score the (B, L, W) features
        against this matrix in chunks (:func:`textflow.kernels.linear_cross_entropy`) instead of
        materialising the (B, L, V) output."""
        return self.proj_out

    def forward(self, z: Tensor, t: Tensor, x_prev: Tensor | None = None, scale: Tensor | None = None, *,
                time_offset: Tensor | None = None, features: bool = False) -> Tensor:
        """``time_offset`` (B, W), optional, is added to the time condition ``c`` of every block: the
        second time of a flow map (:class:`textflow.backbones.flow_map.FlowMapNetwork`); it needs a
        (B,) time and no scale tokens. ``features``: return the (B, L, W) input of :attr:`output_head`
        instead of the output (``output_head(forward(..., features=True)) == forward(...)``)."""
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
        if scale is not None and not self.scale_tokens:
            raise ValueError("scale was given to a DiT built without scale_tokens")
        if time_offset is not None and (t.dim() != 1 or self.scale_tokens):
            raise ValueError("time_offset needs one time per row (t of shape (B,)) and a DiT without scale tokens")
        index = None
        if t.dim() == 1 and not self.scale_tokens:
            c = self.time_mlp(timestep_embedding(t, self.width).to(z.dtype))
            c = (c if time_offset is None else c + time_offset.to(c.dtype)).unsqueeze(1)  # (B, 1, W)
        elif t.dim() == 1:
            c = self.time_mlp(timestep_embedding(t, self.width).to(z.dtype))  # (B, W), gathered per row
            index = torch.arange(b, device=z.device).unsqueeze(1).expand(b, length)
        else:  # per-token time: condition on the few distinct times, then gather per token
            times, index = torch.unique(t, return_inverse=True)
            c = self.time_mlp(timestep_embedding(times, self.width).to(z.dtype))  # (U, W)
        h = self.proj_in(inp) + self.pos[:, :length]
        if self.scale_tokens:  # prepend the scale tokens, each modulated by its row's scale condition
            w = torch.ones(b, device=z.device) if scale is None else scale.to(z.device).reshape(b)
            c_scale = self.scale_features(w).to(z.dtype)  # (B, W)
            rows = (c.shape[0] + torch.arange(b, device=z.device)).unsqueeze(1).expand(b, self.scale_tokens)
            index = torch.cat([rows, index], dim=1)
            c = torch.cat([c, c_scale])
            h = torch.cat([self.scale_base.to(h.dtype) + c_scale.unsqueeze(1), h], dim=1)
        for block in self.blocks:
            h = block(h, c, index)
        out_mod = self.ada_out(F.silu(c))
        shift, scale_mod = (out_mod if index is None else gather_rows(out_mod, index)).chunk(2, dim=-1)
        out = modulate(self.norm_out(h), shift, scale_mod)
        out = out if features else self.proj_out(out)
        return out[:, self.scale_tokens:] if self.scale_tokens else out
