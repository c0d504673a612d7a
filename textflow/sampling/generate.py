"""Batch-invariant generation: noise -> sampler -> readout -> outputs (token ids, or images for a
continuous readout: the readout kind decodes, :mod:`textflow.readouts`).

Shared by ``sample.py`` and the training-time sample callback. Sample ``i`` of a run seeded with
``seed`` always gets the same initial noise and the same churn noise (its own ``torch.Generator``,
:mod:`textflow.noise`), whatever the batch size; runs that differ only in the sampler's gamma or K
therefore start from the same noise. A conditional run (``prompts``) gives sample ``i`` prompt
``i mod P`` as its :class:`textflow.conditioning.Condition`; the given token ids are kept exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
from torch import Tensor

from textflow.kernels.linear import reuse_packed_weights
from textflow.noise import per_sample_generators, randn


@dataclass
class Generation:
    ids: Tensor  # (N, L) decoded token ids; (N, P) decoded images for a continuous autoencoder
    latents: Tensor  # (N, L, D) final latents the readout decoded
    nfe: int  # network calls per batch (same for every batch)
    wall_time: float  # seconds spent sampling + decoding
    committed_step: Optional[Tensor] = None
    baseline: Optional["Generation"] = None  # a conditional run's samples drawn without the prompts
    extras: dict = field(default_factory=dict)  # per-sample means of the sampler's numeric extras

    @property
    def tokens_per_second(self) -> float:
        return self.ids.numel() / max(self.wall_time, 1e-9)


@torch.no_grad()
@reuse_packed_weights()  # each CPU weight reordered for oneDNN once per call (textflow.kernels.linear)
def generate(denoiser, sampler, *, num_samples: int, seq_len: int, seed: int, batch_size: int,
             device: str | torch.device = "cpu", callback: Optional[Callable] = None,
             progress: Optional[Callable] = None, prompts=None) -> Generation:
    """Draw ``num_samples`` sequences of ``seq_len`` tokens.

    ``callback`` is passed to the sampler (per-step records); ``progress(n_done)`` is called after
    each batch (e.g. a progress-bar update); ``prompts`` (:class:`textflow.sampling.prompts.Prompts`)
    conditions each sample on its prompt.
    """
    latent_dim = denoiser.autoencoder.latent_dim
    kind = denoiser.autoencoder.readout_kind
    prior_std = denoiser.path.prior_scale()
    ids, latents, commits, nfe = [], [], [], 0
    extras: dict[str, float] = {}  # the sampler's numeric extras (e.g. adaptive's injected_noise), summed
    start = time.perf_counter()
    for lo in range(0, num_samples, batch_size):
        idx = list(range(lo, min(lo + batch_size, num_samples)))
        gens = per_sample_generators(seed, idx)
        x_init = prior_std * randn((len(idx), seq_len, latent_dim), generator=gens, device=device)
        condition = None if prompts is None else prompts.condition(idx, embed=denoiser.embed, device=device)
        out = sampler(denoiser, x_init, generator=gens, callback=callback,
                      **({} if condition is None else {"condition": condition}))
        nfe = out.nfe
        # a committing sampler has decided its tokens already; otherwise the readout kind decodes
        tokens = out.tokens if out.tokens is not None else kind.decode(denoiser, out.latents)
        if condition is not None:  # the given tokens exactly, whatever the readout makes of their latents
            tokens = condition.restore_tokens(tokens)
        ids.append(tokens.cpu())
        latents.append(out.latents.cpu())
        if out.committed_step is not None:
            commits.append(out.committed_step.cpu())
        for key, value in out.extras.items():  # batch means -> sums over samples
            if isinstance(value, (int, float)):
                extras[key] = extras.get(key, 0.0) + float(value) * len(idx)
        if progress is not None:
            progress(len(idx))
    if device != "cpu" and torch.cuda.is_available():
        torch.cuda.synchronize()
    return Generation(ids=torch.cat(ids), latents=torch.cat(latents), nfe=nfe,
                      wall_time=time.perf_counter() - start,
                      committed_step=torch.cat(commits) if commits else None,
                      extras={key: total / num_samples for key, total in extras.items()})
