"""Muon's update with a chosen dtype for its Newton-Schulz iteration (docs/benchmarks.md, "On the AVX2
host (seventh block)", its Muon item; used by :class:`textflow.training.optim.MuonWithAdamW`).

Muon (Jordan et al. 2024, the optimizer ELF trains with, arXiv 2606.30705) replaces a hidden matrix's
momentum by an approximately orthogonal matrix with the same singular vectors, computed by a quintic
Newton-Schulz iteration. ``torch.optim.Muon`` always runs that iteration in bfloat16. That is right on a
GPU and on a CPU whose oneDNN has bfloat16 kernels (AVX-512 and later), but a CPU without them (AVX2
only) emulates every bfloat16 matmul: one step over ``dit_small`` took 12.0 s there against 0.26 s with
the iteration in float32 (``python docs/bench/muon_ns_dtype_probe.py``). This module runs the same
update as ``torch.optim.Muon`` (same state key, same order of operations, so bfloat16 here equals torch
bit for bit) with the iteration's dtype as a parameter, and :func:`ns_dtype_for` picks it per device.
"""

from __future__ import annotations

import functools
import math
from typing import Optional

import torch
from torch import Tensor

from textflow.errors import ConfigError

NS_DTYPES = ("auto", "bfloat16", "float32")
STATE_KEY = "momentum_buffer"  # torch.optim.Muon's key: optimizer states saved before this module still load


def check_ns_dtype(choice: str) -> str:
    """``choice`` if it is one of :data:`NS_DTYPES`, else a ``ConfigError`` naming the valid ones."""
    if choice not in NS_DTYPES:
        raise ConfigError(f"optimizer.muon_ns_dtype={choice!r} is invalid; it must be one of "
                          f"{', '.join(NS_DTYPES)}")
    return choice


@functools.lru_cache(maxsize=None)
def fast_bfloat16_matmul(device: torch.device) -> bool:
    """Whether a bfloat16 matmul on ``device`` runs on native kernels: a CUDA device with bfloat16 support,
    or a CPU where oneDNN's bfloat16 GEMM applies (AVX-512 core and later; PyTorch falls back to an
    emulated reference GEMM elsewhere)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
        return bool(check()) if check is not None else False
    return False


def ns_dtype_for(choice: str, device: torch.device) -> torch.dtype:
    """The Newton-Schulz dtype for a parameter on ``device``: ``choice`` itself, or for ``"auto"``
    bfloat16 where :func:`fast_bfloat16_matmul` holds (torch's choice) and float32 elsewhere."""
    if check_ns_dtype(choice) == "auto":
        return torch.bfloat16 if fast_bfloat16_matmul(device) else torch.float32
    return getattr(torch, choice)


def orthogonalize(matrix: Tensor, *, coefficients: tuple[float, float, float], steps: int, eps: float,
                  dtype: torch.dtype) -> Tensor:
    """Approximately ``U V^T`` for ``matrix = U S V^T`` by ``steps`` quintic Newton-Schulz iterations in
    ``dtype``: ``X <- a X + (b A + c A^2) X`` with ``A = X X^T``, after scaling ``X`` to Frobenius norm 1
    (so its spectral norm is at most 1), on the wide orientation of the matrix. The coefficients trade
    exactness for speed: the result's singular values scatter around 1 rather than equal it.
    Returns a new tensor in ``dtype``; ``matrix`` is not modified."""
    a, b, c = coefficients
    tall = matrix.size(0) > matrix.size(1)
    x = matrix.to(dtype, copy=True)
    if tall:
        x = x.T
    x.div_(x.norm().clamp(min=eps))
    for _ in range(steps):
        gram = x @ x.T
        poly = torch.addmm(gram, gram, gram, beta=b, alpha=c)
        x = torch.addmm(x, poly, x, beta=a)
    return x.T if tall else x


def lr_scale(adjust_lr_fn: Optional[str], shape: torch.Size) -> float:
    """Muon's per-matrix learning-rate factor: ``sqrt(max(1, rows/cols))`` (``None``/``"original"``) or
    ``0.2 sqrt(max(rows, cols))`` (``"match_rms_adamw"``, AdamW-sized updates), as ``torch.optim.Muon``."""
    rows, cols = shape[:2]
    if adjust_lr_fn in (None, "original"):
        return math.sqrt(max(1.0, rows / cols))
    if adjust_lr_fn == "match_rms_adamw":
        return 0.2 * math.sqrt(max(rows, cols))
    raise ConfigError(f"optimizer.muon_adjust_lr_fn={adjust_lr_fn!r} is invalid; it must be null, original "
                      "or match_rms_adamw")


@torch.no_grad()
def muon_group_step(group: dict, state: dict, *, ns_dtype: str = "auto") -> None:
    """One Muon update of every parameter with a gradient in ``group`` (a ``torch.optim.Muon`` group dict:
    ``lr``, ``momentum``, ``nesterov``, ``weight_decay``, ``ns_coefficients``, ``ns_steps``, ``eps``,
    ``adjust_lr_fn``), its momentum buffer kept in ``state[param]``: momentum ``m <- lerp(m, g, 1 - mu)``,
    direction ``lerp(g, m, mu)`` (Nesterov) or ``m``, orthogonalised (:func:`orthogonalize`), then
    decoupled weight decay and the step scaled by :func:`lr_scale`."""
    lr = float(group["lr"])
    momentum = group["momentum"]
    for param in group["params"]:
        grad = param.grad
        if grad is None:
            continue
        if grad.is_sparse or torch.is_complex(param) or grad.ndim != 2:
            raise RuntimeError(f"Muon updates dense real 2-D matrices; got a {tuple(grad.shape)} "
                               f"{'sparse ' if grad.is_sparse else ''}{grad.dtype} gradient")
        slot = state[param]
        if STATE_KEY not in slot:
            slot[STATE_KEY] = torch.zeros_like(grad, memory_format=torch.preserve_format)
        buffer = slot[STATE_KEY]
        buffer.lerp_(grad, 1 - momentum)
        direction = grad.lerp(buffer, momentum) if group["nesterov"] else buffer
        update = orthogonalize(direction, coefficients=group["ns_coefficients"], steps=group["ns_steps"],
                               eps=group["eps"], dtype=ns_dtype_for(ns_dtype, param.device))
        param.mul_(1 - lr * group["weight_decay"])
        param.add_(update, alpha=-lr * lr_scale(group["adjust_lr_fn"], param.shape))
