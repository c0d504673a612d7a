"""textflow's Euler ODE against a peer doing the same work: ``torchdiffeq.odeint(method="euler")``
on the same denoiser, time grid and initial noise (optional extra; skipped with a message when
torchdiffeq is not installed). Reports the largest output difference and the time ratio."""

from __future__ import annotations

import torch

from textflow.bench.runner import time_call
from textflow.checkpoint import load_run
from textflow.noise import per_sample_generators, randn
from textflow.samplers import Sampler


def run(*, ckpt: str, steps: list[int], batch_size: int = 32, repeats: int = 5) -> list[dict]:
    try:
        from torchdiffeq import odeint
    except ImportError:
        print("torchdiffeq is not installed (pip install torchdiffeq): peer benchmark skipped")
        return []
    loaded = load_run(ckpt)
    den = loaded.denoiser()
    seq_len, dim = int(loaded.info["seq_len"]), den.autoencoder.latent_dim
    x0 = den.path.prior_scale() * randn((batch_size, seq_len, dim), generator=per_sample_generators(0, range(batch_size)))

    def field(t, z):
        tt = t.expand(z.shape[0])
        return den.path.velocity(den(z, tt), z, tt)

    rows = []
    for k in steps:
        sampler = Sampler(name="ode", steps=k)
        grid = sampler.time_grid()
        with torch.no_grad():
            ours = sampler(den, x0).latents
            theirs = odeint(field, x0, grid, method="euler")[-1]
            t_ours = time_call(lambda: sampler(den, x0), warmup=1, repeats=repeats, desc=f"textflow K={k}")
            t_peer = time_call(lambda: odeint(field, x0, grid, method="euler"), warmup=1, repeats=repeats,
                               desc=f"torchdiffeq K={k}")
        rows.append({"K": k, "max_abs_diff": float((ours - theirs).abs().max()), "textflow_s": t_ours["median_s"],
                     "torchdiffeq_s": t_peer["median_s"], "ratio": t_ours["median_s"] / t_peer["median_s"],
                     "target_ratio": 1.05})
    return rows
