"""Few-step flow sampling against a KV-cached autoregressive baseline, across sequence length and K.

Both models are freshly initialised (throughput does not depend on the weights) at the same width,
depth, heads and vocabulary: the flow is a DiT with the embedding readout and the Euler ODE sampler
(``K`` full-length calls + one readout), the baseline :class:`~textflow.baselines.CausalLM`
(``L`` cached single-token calls). Rows: tokens/s of each at each (L, K), the speedup, and the
largest K at which the flow still matches the baseline (break-even). Figures: tokens/s vs L and
time vs K, saved as PNG beside the JSON.
"""

from __future__ import annotations

from pathlib import Path

import torch

from textflow.baselines import CausalLM
from textflow.bench.runner import time_call


def build_flow(*, vocab_size: int, width: int, depth: int, heads: int, latent_dim: int, max_len: int, device):
    from textflow.autoencoders import EmbeddingAutoencoder
    from textflow.backbones import DiT
    from textflow.denoiser import FlowDenoiser
    from textflow.paths import LinearPath

    backbone = DiT(latent_dim=latent_dim, max_len=max_len, width=width, depth=depth, heads=heads)
    autoencoder = EmbeddingAutoencoder(vocab_size=vocab_size, latent_dim=latent_dim)
    return FlowDenoiser(backbone=backbone, path=LinearPath(), autoencoder=autoencoder).to(device).eval()


def run(*, lengths: list[int], steps: list[int], batch_size: int = 32, width: int = 256, depth: int = 4,
        heads: int = 4, vocab_size: int = 4096, latent_dim: int = 64, repeats: int = 3, device: str = "cpu",
        bf16: bool = False, compile: bool = False, out_dir: str | Path = "outputs/bench") -> list[dict]:
    from textflow.sampling.generate import generate
    from textflow.samplers import Sampler

    max_len = max(lengths)
    flow = build_flow(vocab_size=vocab_size, width=width, depth=depth, heads=heads, latent_dim=latent_dim,
                      max_len=max_len, device=device)
    if bf16:
        flow.autocast_dtype = torch.bfloat16
    if compile:  # the flow's backbone; the AR loop's shapes change every step, so it stays eager
        flow.backbone.compile()
    ar = CausalLM(vocab_size=vocab_size, width=width, depth=depth, heads=heads, max_len=max_len + 1).to(device).eval()
    rows = []
    for length in lengths:
        prompt = torch.zeros(batch_size, 1, dtype=torch.long, device=device)

        def ar_once():
            with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
                return ar.generate(prompt, length)

        ar_time = time_call(ar_once, warmup=1, repeats=repeats, desc=f"AR L={length}")["median_s"]
        for k in steps:
            sampler = Sampler(name="ode", steps=k)
            flow_time = time_call(lambda: generate(flow, sampler, num_samples=batch_size, seq_len=length, seed=0,
                                                   batch_size=batch_size, device=device),
                                  warmup=1, repeats=repeats, desc=f"ode K={k} L={length}")["median_s"]
            tokens = batch_size * length
            rows.append({"seq_len": length, "K": k, "batch": batch_size, "device": device, "bf16": bf16,
                         "compile": compile,
                         "flow_s": flow_time, "ar_s": ar_time, "flow_tokens_per_s": tokens / flow_time,
                         "ar_tokens_per_s": tokens / ar_time, "speedup": ar_time / flow_time})
    for row in rows:
        same_len = [r for r in rows if r["seq_len"] == row["seq_len"] and r["speedup"] >= 1.0]
        row["break_even_K"] = max((r["K"] for r in same_len), default=0)
    plot(rows, Path(out_dir) / f"scaling-{device}.png")
    return rows


def plot(rows: list[dict], path: Path) -> Path:
    from textflow.plots import finish, new_axes

    fig, axes = new_axes(figsize=(10, 3.6))
    fig.clf()
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    lengths = sorted({r["seq_len"] for r in rows})
    for k in sorted({r["K"] for r in rows}):
        pts = sorted((r["seq_len"], r["flow_tokens_per_s"]) for r in rows if r["K"] == k)
        left.plot(*zip(*pts), marker="o", label=f"flow ode K={k}")
    ar = sorted({(r["seq_len"], r["ar_tokens_per_s"]) for r in rows})
    left.plot(*zip(*ar), marker="s", color="black", label="AR, KV cache")
    left.set(xscale="log", yscale="log", xlabel="sequence length L", ylabel="tokens / s",
             title="throughput vs length")
    for length in lengths:
        pts = sorted((r["K"], r["flow_s"]) for r in rows if r["seq_len"] == length)
        line = right.plot(*zip(*pts), marker="o", label=f"flow L={length}")[0]
        ar_s = next(r["ar_s"] for r in rows if r["seq_len"] == length)
        right.axhline(ar_s, color=line.get_color(), linestyle="--", linewidth=1)
    right.set(xscale="log", yscale="log", xlabel="steps K", ylabel="seconds per batch",
              title="cost vs K (dashed: AR at the same L)")
    left.legend(fontsize=7)
    left.grid(alpha=0.3)
    return finish(fig, right, path)
