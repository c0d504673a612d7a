"""Per-position numbers of readout logits without the (B, L, V) logits tensor (docs/benchmarks.md,
"Large vocabularies").

A diagnostic or a sampler that needs only per-position numbers (the decoded token, the cross-entropy of
a token, the top-k tokens and probabilities, the entropy) never needs the whole logits tensor. With the
readout's linear head (``head(x) = (features, W, b)``) the logits come a cache-sized tile of positions x
vocabulary columns at a time and are reduced by :class:`~textflow.kernels.online.OnlineLogits` before
the next tile, at any vocabulary size. Without a head (a readout that may mix positions, like the
transformer VAE's decoder) whole sequences go through the readout, about ``chunk_elements()`` logits
per call, each call one tile.
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch
from torch import Tensor

from textflow.kernels.chunking import cache_chunk_elements, chunk_elements
from textflow.kernels.online import OnlineLogits, column_tiles, tile_shape

Readout = Callable[[Tensor], Tensor]


def row_slices(readout: Readout, x: Tensor) -> list[slice]:
    """Consecutive row ranges of ``x`` (B, L, D) whose logits hold about ``chunk_elements()`` floats each;
    the vocabulary size comes from one readout call on a single position."""
    with torch.no_grad():
        vocab = readout(x[:1, :1].detach()).shape[-1]
    step = max(1, chunk_elements() // max(x.shape[1] * vocab, 1))
    return [slice(start, min(start + step, x.shape[0])) for start in range(0, x.shape[0], step)]


def readout_chunks(readout: Readout, x: Tensor) -> Iterator[tuple[slice, Tensor]]:
    """``(positions, float32 logits (n, V))`` over ``x`` (B, L, D) flattened to B * L positions, whole
    sequences through ``readout`` a few at a time (:func:`row_slices`). A readout that does not return
    per-position logits (B, L, V) raises ValueError."""
    length = x.shape[1]
    for rows in (row_slices(readout, x) if x.shape[0] else []):
        logits = readout(x[rows])
        if logits.dim() != 3 or logits.shape[:2] != x[rows].shape[:2]:
            raise ValueError(f"the readout returned shape {tuple(logits.shape)} for latents "
                             f"{tuple(x[rows].shape)}, not per-token logits (B, L, V)")
        yield slice(rows.start * length, rows.stop * length), logits.float().flatten(0, 1)


def position_stats(readout: Readout, x: Tensor, *, head: "Head | None" = None, topk: int = 1,
                   tokens: Tensor | None = None, entropy: bool = False,
                   logsumexp: bool = True) -> Iterator[OnlineLogits]:
    """:class:`~textflow.kernels.online.OnlineLogits` of consecutive blocks of the B * L positions of
    ``x`` (B, L, D), in order, each complete (``tokens`` (B, L): also their logits; ``logsumexp=False``:
    only the best tokens)."""
    flat_tokens = None if tokens is None else tokens.reshape(-1)

    def fresh(rows: slice, base2: bool = False) -> OnlineLogits:
        return OnlineLogits(topk=topk, tokens=None if flat_tokens is None else flat_tokens[rows], entropy=entropy,
                            logsumexp=logsumexp, base2=base2)

    with torch.no_grad():
        parts = None if head is None or x.shape[0] == 0 else head(x)
        if parts is None:
            for rows, logits in readout_chunks(readout, x):
                stats = fresh(rows)
                stats.update(0, logits, owned=False)  # a readout may return (a view of) its input
                yield stats
            return
        features, weight, bias = (None if p is None else p.detach().float() for p in parts)
        flat = features.reshape(-1, features.shape[-1])
        block, columns = tile_shape(weight.shape[0], cache_chunk_elements())
        for start in range(0, flat.shape[0], block):
            rows = slice(start, min(start + block, flat.shape[0]))
            stats = fresh(rows, base2=True)
            for column, logits in column_tiles(flat[rows], weight, bias, columns, base2=True):
                stats.update(column, logits)
            yield stats


def readout_argmax(readout: Readout, x: Tensor, *, head: "Head | None" = None) -> Tensor:
    """The decoded tokens (B, L) of latents ``x`` (B, L, D)."""
    stats = position_stats(readout, x, head=head, logsumexp=False)
    return torch.cat([s.indices[:, 0] for s in stats]).view(x.shape[:2])


def readout_token_stats(readout: Readout, x: Tensor, tokens: Tensor, *,
                        head: "Head | None" = None) -> tuple[Tensor, Tensor]:
    """``(decoded tokens (B, L), cross-entropy of ``tokens`` at every position (B, L))``."""
    blocks = list(position_stats(readout, x, head=head, tokens=tokens))
    return (torch.cat([s.indices[:, 0] for s in blocks]).view(tokens.shape),
            torch.cat([s.cross_entropy() for s in blocks]).view(tokens.shape))


def readout_top2(readout: Readout, x: Tensor, *, head: "Head | None" = None) -> tuple[Tensor, Tensor]:
    """``(top-2 probabilities (B, L, 2) best first, argmax tokens (B, L))`` of latents ``x`` (B, L, D);
    with a one-token vocabulary the second probability is 0."""
    blocks = list(position_stats(readout, x, head=head, topk=2))
    return (torch.cat([s.top_probs() for s in blocks]).view(*x.shape[:2], 2),
            torch.cat([s.indices[:, 0] for s in blocks]).view(x.shape[:2]))


def top2_probs(logits: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`readout_top2` of a logits tensor (..., V) already in hand: ``(probabilities (..., 2), argmax (...))``."""
    stats = OnlineLogits(topk=2)
    stats.update(0, logits.detach().float().reshape(-1, logits.shape[-1]), owned=False)
    return stats.top_probs().view(*logits.shape[:-1], 2), stats.indices[:, 0].view(logits.shape[:-1])


def readout_entropy(readout: Readout, x: Tensor, *, head: "Head | None" = None) -> Tensor:
    """The readout distribution's entropy in nats (B, L) at latents ``x`` (B, L, D) (a ``-inf`` logit
    contributes 0, not nan)."""
    return torch.cat([s.entropy() for s in position_stats(readout, x, head=head, entropy=True)]).view(x.shape[:2])


def readout_topk(readout: Readout, x: Tensor, k: int, *, head: "Head | None" = None) -> Tensor:
    """Indices (B, L, k) of the ``k`` largest logits at every position, best first."""
    return torch.cat([s.indices for s in position_stats(readout, x, head=head, topk=k)]).view(*x.shape[:2], k)


Head = Callable[[Tensor], "tuple[Tensor, Tensor, Tensor | None] | None"]


def selected_logits(head: Head, x: Tensor, index: Tensor) -> Tensor | None:
    """The logits (B, L, k) of tokens ``index`` (B, L, k) at latents ``x``, through the readout's last
    linear layer ``head(x) = (features, W, b)`` (:meth:`textflow.autoencoders.LatentAutoencoder.readout_head`):
    ``features . W[index] + b[index]``, differentiable in ``x`` without touching the other V - k rows.
    None when the readout has no linear head."""
    parts = head(x)
    if parts is None:
        return None
    features, weight, bias = parts
    picked = torch.einsum("bld,blkd->blk", features.float(), weight.float()[index])
    return picked if bias is None else picked + bias.float()[index]
