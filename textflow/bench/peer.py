"""textflow's samplers against peers doing the same work on the same denoiser, grid and noise:
the Euler ODE against ``torchdiffeq.odeint(method="euler")`` (optional; skipped with a message when
torchdiffeq is not installed), and the SDE against :func:`reference_sde`, a straightforward loop
written directly from docs/samplers.md (linear path). Reports the largest output difference and the
time ratio."""

from __future__ import annotations

import torch

from textflow.bench.runner import time_call
from textflow.checkpoint import load_run
from textflow.noise import per_sample_generators, randn
from textflow.samplers import Sampler


@torch.no_grad()
def reference_sde(den, x0: torch.Tensor, grid: torch.Tensor, gamma: float, generators) -> torch.Tensor:
    """ELF's churned Euler, spelled out for the linear path: per step h = t' - t, a = max(1 - gamma h, 0),
    t_b = a t, z_b = a z + (1 - a) sigma eps, then z = z_b + (t' - t_b)(x_hat - z_b)/(1 - t_b); the last
    step returns x_hat."""
    z, sigma, b = x0.clone(), den.path.sigma, x0.shape[0]
    for i in range(len(grid) - 1):
        t, t_next = float(grid[i]), float(grid[i + 1])
        a = max(1.0 - gamma * (t_next - t), 0.0)
        if i < len(grid) - 2 and a < 1.0:
            eps = torch.stack([torch.randn(x0.shape[1:], generator=g) for g in generators])
            t, z = a * t, a * z + (1 - a) * sigma * eps
        x_hat = den(z, torch.full((b,), t))
        z = x_hat if i == len(grid) - 2 else z + (t_next - t) * (x_hat - z) / max(1 - t, den.path.t_eps)
    return z


def run(*, ckpt: str, steps: list[int], batch_size: int = 32, repeats: int = 5, gamma: float = 1.5) -> list[dict]:
    try:
        from torchdiffeq import odeint
    except ImportError:
        odeint = None
        print("torchdiffeq is not installed (pip install torchdiffeq): the ODE peer is skipped")
    loaded = load_run(ckpt)
    den = loaded.denoiser()
    seq_len, dim = int(loaded.info["seq_len"]), den.autoencoder.latent_dim
    x0 = den.path.prior_scale() * randn((batch_size, seq_len, dim), generator=per_sample_generators(0, range(batch_size)))

    def field(t, z):
        tt = t.expand(z.shape[0])
        return den.path.velocity(den(z, tt), z, tt)

    rows = []
    for k in steps:
        sde = Sampler(name="sde", steps=k, gamma=gamma)
        with torch.no_grad():
            ours = sde(den, x0, generator=per_sample_generators(1, range(batch_size))).latents
            ref = reference_sde(den, x0, sde.time_grid(), gamma, per_sample_generators(1, range(batch_size)))
            t_ours = time_call(lambda: sde(den, x0, generator=per_sample_generators(1, range(batch_size))),
                               warmup=1, repeats=repeats, desc=f"textflow sde K={k}")
            t_ref = time_call(lambda: reference_sde(den, x0, sde.time_grid(), gamma,
                                                    per_sample_generators(1, range(batch_size))),
                              warmup=1, repeats=repeats, desc=f"reference sde K={k}")
        rows.append({"sampler": f"sde gamma={gamma}", "peer": "reference loop", "K": k,
                     "max_abs_diff": float((ours - ref).abs().max()), "textflow_s": t_ours["median_s"],
                     "peer_s": t_ref["median_s"], "ratio": t_ours["median_s"] / t_ref["median_s"],
                     "target_ratio": 1.05})
        if odeint is None:
            continue
        sampler = Sampler(name="ode", steps=k)
        grid = sampler.time_grid()
        with torch.no_grad():
            ours = sampler(den, x0).latents
            theirs = odeint(field, x0, grid, method="euler")[-1]
            t_ours = time_call(lambda: sampler(den, x0), warmup=1, repeats=repeats, desc=f"textflow K={k}")
            t_peer = time_call(lambda: odeint(field, x0, grid, method="euler"), warmup=1, repeats=repeats,
                               desc=f"torchdiffeq K={k}")
        rows.append({"sampler": "ode", "peer": "torchdiffeq euler", "K": k,
                     "max_abs_diff": float((ours - theirs).abs().max()), "textflow_s": t_ours["median_s"],
                     "peer_s": t_peer["median_s"], "ratio": t_ours["median_s"] / t_peer["median_s"],
                     "target_ratio": 1.05})
    return rows
