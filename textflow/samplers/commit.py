"""Categorical-commit hybrid sampler (docs/samplers.md, ``commit``).

At every step the current posterior mean ``x_hat`` is decoded through the autoencoder's readout and
some positions are *committed*: their token is fixed, their latent is replaced by the clean latent of
that token (``denoiser.embed``) and held at per-token time ``t = 1`` for the rest of sampling.
Uncommitted positions continue with the ODE step (``gamma = 0``) or the churned SDE step
(``gamma > 0``, ELF semantics). This is the paper's first escape from non-commitment: decide tokens
discretely and feed them back (the idea behind Diffusion-LM's clamping, Li et al. 2022, and masked
diffusion's unmask-and-keep).

Rules (``rule``):
* ``confidence`` – commit where the top readout probability is ``>= threshold``;
* ``margin``     – commit where top-1 minus top-2 probability is ``>= threshold``;
* ``schedule``   – commit the most confident uncommitted positions so that ``ceil(L (i + 1) / K)``
  positions are committed after step ``i`` (everything by the last step).

With a rule that never fires the sampler equals its base sampler (``ode`` or ``sde`` with the same
gamma) bit for bit; with everything committed at step 0 it returns the readout of the first
``x_hat``. ``SampleOutput.committed_step`` records, per position, the step at which it committed
(-1 if never). NFE = K (plus one readout per step, which is not a network call of the backbone).

Conditioning positions (``denoiser.condition``, docs/conditioning.md) are held from the start with
their given tokens and latents; they are not the sampler's commits (``committed_step`` stays -1
there), and the ``schedule`` quota counts the free positions only.
"""

from __future__ import annotations

import math

import torch

from textflow.checks import require_number
from textflow.errors import check_choice
from textflow.kernels import readout_argmax, readout_top2
from textflow.samplers.registry import register_sampler
from textflow.samplers.steps import batch_time, churn_euler_step, emit
from textflow.types import SampleOutput

RULES = ("confidence", "margin", "schedule")


def check_commit(*, rule: str = "confidence", threshold: float = 0.9, gamma: float = 0.0) -> None:
    check_choice("sampler.rule", rule, RULES)
    if rule == "schedule":
        require_number("sampler.threshold", threshold, hint=" (ignored by rule=schedule)")
    else:
        require_number("sampler.threshold", threshold, low=0, high=1, hint=" (a probability)")
    require_number("sampler.gamma", gamma, low=0, hint=" (0 = ODE steps)")


def select_commits(top2: torch.Tensor, committed: torch.Tensor, *, rule: str, threshold: float, step: int,
                   steps: int, pinned: torch.Tensor | None = None) -> torch.Tensor:
    """Boolean (B, L) mask of the positions to commit now (never already-committed ones), from the
    top-2 readout probabilities ``top2`` (B, L, 2); ``pinned`` (B,) counts held conditioning positions,
    which the ``schedule`` quota does not include."""
    if rule == "confidence":
        return ~committed & (top2[..., 0] >= threshold)
    if rule == "margin":
        return ~committed & (top2[..., 0] - top2[..., 1] >= threshold)
    length = committed.shape[1]
    if pinned is None:
        quota = math.ceil(length * (step + 1) / steps)
    else:
        quota = pinned + ((length - pinned) * (step + 1) + steps - 1) // steps  # (B,) ceil over free positions
    need = (quota - committed.sum(1)).clamp_min(0)  # (B,)
    score = top2[..., 0].masked_fill(committed, -1.0)
    order = score.argsort(dim=1, descending=True).argsort(dim=1)  # rank of each position
    return ~committed & (order < need.unsqueeze(1))


@register_sampler("commit", check=check_commit)
@torch.no_grad()
def sample_commit(denoiser, x_init, time_grid, *, generator=None, callback=None, rule: str = "confidence",
                  threshold: float = 0.9, gamma: float = 0.0) -> SampleOutput:
    """Commit-and-hold hybrid; see the module docstring."""
    check_commit(rule=rule, threshold=threshold, gamma=gamma)
    nfe_start, z = denoiser.nfe, x_init
    b, length = z.shape[:2]
    committed = torch.zeros(b, length, dtype=torch.bool, device=z.device)
    committed_step = torch.full((b, length), -1, dtype=torch.long, device=z.device)
    tokens = torch.zeros(b, length, dtype=torch.long, device=z.device)
    held = torch.zeros_like(z)
    condition, pinned = getattr(denoiser, "condition", None), None
    if condition is not None:  # given positions: held from the start, not the sampler's commits
        committed, tokens = condition.mask.clone(), condition.ids.clone()
        held = condition.restore(held)
        pinned = condition.mask.sum(1)
    k, head = len(time_grid) - 1, getattr(denoiser, "readout_head", None)
    for i in range(k):
        t, t_next = batch_time(time_grid[i], z), batch_time(time_grid[i + 1], z)
        last = i == k - 1
        z, x_hat, t_b, z_b, alpha = churn_euler_step(denoiser, z, t, t_next, gamma=gamma, generator=generator,
                                                     last=last, hold=committed, held=held)
        top2, argmax = readout_top2(denoiser.readout, x_hat, head=head)
        new = select_commits(top2, committed, rule=rule, threshold=threshold, step=i, steps=k, pinned=pinned)
        if bool(new.any()):
            tokens = torch.where(new, argmax, tokens)
            held = torch.where(new.unsqueeze(-1), denoiser.embed(tokens).to(z.dtype), held)
            committed_step = torch.where(new, torch.full_like(committed_step, i), committed_step)
            committed = committed | new
            z = torch.where(new.unsqueeze(-1), held, z)
        emit(callback, denoiser, i, t_b, t_next, z_b, x_hat, churn_alpha=alpha,
             committed=committed.clone(), newly_committed=new)
    final = readout_argmax(denoiser.readout, z, head=head)
    return SampleOutput(latents=z, nfe=denoiser.nfe - nfe_start, time_grid=time_grid,
                        committed_step=committed_step, tokens=torch.where(committed, tokens, final))
