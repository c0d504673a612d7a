"""Readout logits a chunk at a time (docs/benchmarks.md, "Large vocabularies").

A diagnostic that needs only per-position numbers (the decoded token, the cross-entropy of a token, the
top-k tokens) never needs the whole (B, L, V) logits tensor: these helpers compute logits for a chunk of
about ``chunk_elements()`` floats and reduce it before the next. Any readout works: without its linear
head they call it on whole sequences (a readout may mix positions, like the transformer VAE's decoder);
with the head they chunk positions.
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch
from torch import Tensor

from textflow.kernels.chunking import cache_chunk_elements, chunk_elements

Readout = Callable[[Tensor], Tensor]


def row_slices(readout: Readout, x: Tensor, *, elements: int | None = None) -> list[slice]:
    """Consecutive row ranges of ``x`` (B, L, D) whose logits hold about ``elements`` floats each
    (default ``chunk_elements()``); the vocabulary size comes from one readout call on a single position."""
    with torch.no_grad():
        vocab = readout(x[:1, :1].detach()).shape[-1]
    step = max(1, (elements or chunk_elements()) // max(x.shape[1] * vocab, 1))
    return [slice(start, min(start + step, x.shape[0])) for start in range(0, x.shape[0], step)]


def readout_chunks(readout: Readout, x: Tensor, *, head: "Head | None" = None,
                   elements: int | None = None) -> Iterator[tuple[slice, Tensor]]:
    """``(positions, float32 logits (n, V))`` over ``x`` (B, L, D) flattened to B * L positions.

    Without ``head``, whole sequences go through ``readout`` a few at a time (:func:`row_slices`). With
    the readout's linear ``head`` (``head(x) = (features, W, b)``, :func:`selected_logits`), the features
    and ``W`` are computed once and the chunks are any ``elements / V`` positions (default
    ``chunk_elements()``), each one ``addmm`` (the positions are independent after the head). A readout
    that does not return per-position logits (B, L, V) raises ValueError."""
    if x.shape[0] == 0:
        return
    parts = None if head is None else head(x)
    if parts is None:
        length = x.shape[1]
        for rows in row_slices(readout, x, elements=elements):
            logits = readout(x[rows])
            if logits.dim() != 3 or logits.shape[:2] != x[rows].shape[:2]:
                raise ValueError(f"the readout returned shape {tuple(logits.shape)} for latents "
                                 f"{tuple(x[rows].shape)}, not per-token logits (B, L, V)")
            yield slice(rows.start * length, rows.stop * length), logits.float().flatten(0, 1)
        return
    features, weight, bias = (None if p is None else p.detach().float() for p in parts)
    flat = features.reshape(-1, features.shape[-1])
    step = max(1, (elements or chunk_elements()) // weight.shape[0])
    for start in range(0, flat.shape[0], step):
        rows = slice(start, min(start + step, flat.shape[0]))
        yield rows, flat[rows] @ weight.T if bias is None else torch.addmm(bias, flat[rows], weight.T)


def readout_argmax(readout: Readout, x: Tensor, *, head: "Head | None" = None) -> Tensor:
    """The decoded tokens (B, L) of latents ``x`` (B, L, D)."""
    with torch.no_grad():
        return torch.cat([logits.argmax(-1) for _, logits in readout_chunks(readout, x, head=head)]).view(x.shape[:2])


def readout_token_stats(readout: Readout, x: Tensor, tokens: Tensor, *,
                        head: "Head | None" = None) -> tuple[Tensor, Tensor]:
    """``(decoded tokens (B, L), cross-entropy of ``tokens`` at every position (B, L))``: a max pass, an
    in-place exp and a sum per chunk (no log-softmax tensor)."""
    decoded, ce = [], []
    flat_tokens = tokens.reshape(-1)
    with torch.no_grad():
        for rows, logits in readout_chunks(readout, x, head=head):
            picked = logits.gather(1, flat_tokens[rows, None]).squeeze(1)
            top = logits.max(dim=-1)  # argmax and the stable shift, one pass
            decoded.append(top.indices)
            norm = logits.sub_(top.values[:, None]).exp_().sum(-1)  # the chunk is ours: in place
            ce.append(top.values + norm.log() - picked)
    return torch.cat(decoded).view(tokens.shape), torch.cat(ce).view(tokens.shape)


def readout_top2(readout: Readout, x: Tensor, *, head: "Head | None" = None) -> tuple[Tensor, Tensor]:
    """``(top-2 probabilities (B, L, 2) best first, argmax tokens (B, L))`` of latents ``x`` (B, L, D).

    A top-2 and a log-sum-exp per chunk of :func:`~textflow.kernels.chunking.cache_chunk_elements` logits,
    so both passes read a chunk still in cache (docs/benchmarks.md, "Sampling at the machine's limit");
    per position the arithmetic is the whole-tensor ``exp(topk(logits) - logsumexp(logits))``. With a
    one-token vocabulary the second probability is 0."""
    probs, tokens = [], []
    with torch.no_grad():
        for _, logits in readout_chunks(readout, x, head=head, elements=cache_chunk_elements()):
            top2, argmax = top2_probs(logits)
            probs.append(top2)
            tokens.append(argmax)
    return torch.cat(probs).view(*x.shape[:2], 2), torch.cat(tokens).view(x.shape[:2])


def top2_probs(logits: Tensor) -> tuple[Tensor, Tensor]:
    """Top-2 probabilities (..., 2) and the argmax token (...) of logits (..., V), without materialising
    the softmax: ``exp(topk(logits) - logsumexp(logits))``."""
    logits = logits.float()
    values, index = logits.topk(min(2, logits.shape[-1]), dim=-1)
    if values.shape[-1] == 1:
        values = torch.cat([values, torch.full_like(values, float("-inf"))], -1)
    return (values - logits.logsumexp(-1, keepdim=True)).exp(), index[..., 0]


def readout_entropy(readout: Readout, x: Tensor, *, head: "Head | None" = None) -> Tensor:
    """The readout distribution's entropy in nats (B, L) at latents ``x`` (B, L, D), a cache-sized chunk
    of logits at a time (a ``-inf`` logit contributes 0, not nan)."""
    entropy = []
    with torch.no_grad():
        for _, logits in readout_chunks(readout, x, head=head, elements=cache_chunk_elements()):
            p = (logits - logits.logsumexp(-1, keepdim=True)).exp()
            entropy.append(-torch.special.xlogy(p, p).sum(-1))
    return torch.cat(entropy).view(x.shape[:2])


def readout_topk(readout: Readout, x: Tensor, k: int, *, head: "Head | None" = None) -> Tensor:
    """Indices (B, L, k) of the ``k`` largest logits at every position, best first."""
    with torch.no_grad():
        chunks = [logits.topk(k, dim=-1).indices for _, logits in readout_chunks(readout, x, head=head)]
    return torch.cat(chunks).view(*x.shape[:2], k)


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
