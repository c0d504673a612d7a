"""Distillation fidelity: how far a few-step sampler lands from its teacher's fine ODE from the same noise
(docs/samplers.md, "The few-step frontier").

``python -m textflow.sampling.fidelity CKPT --sampler flow_map --steps 1 2 4 8`` draws ``--num-samples``
noises (the seeds of ``sample.py``, so sample ``i`` starts from the same noise as there), runs the
teacher's ``ode`` at ``--reference-steps`` (64 by default: the flow's own answer, nearly free of
discretisation error) and the chosen sampler at every K, and reports per K the mean squared distance of
the final latents to the reference's and the share of tokens whose readout agrees. A student that
matches its teacher's ODE scores near the teacher's fine-grid values; a gen-PPL that improves while the
agreement falls means the student has learned another distribution, not a faster route to the
teacher's. Writes ``fidelity.json`` and ``fidelity.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from textflow.io import atomic_write_json, atomic_write_text
from textflow.samplers import Sampler
from textflow.sampling.generate import generate


def fidelity_rows(loaded, *, sampler: str, steps: list[int], reference_steps: int = 64, num_samples: int = 64,
                  batch_size: int = 32, seed: int = 0, gamma: float | None = None) -> list[dict]:
    """One row per K: ``latent_mse`` and ``token_agreement`` against the teacher's ``ode`` at
    ``reference_steps`` from the same noise (``loaded``: a :class:`textflow.checkpoint.LoadedRun`)."""
    seq_len = int(loaded.info["seq_len"])

    def run(name: str, k: int, **knobs):
        s = Sampler(name=name, steps=k, **knobs)
        return generate(s.denoiser(loaded), s, num_samples=num_samples, seq_len=seq_len, seed=seed,
                        batch_size=batch_size)

    ref = run("ode", reference_steps)
    knobs = {} if gamma is None else {"gamma": gamma}
    rows = []
    for k in steps:
        got = run(sampler, k, **knobs)
        rows.append({"sampler": sampler, "steps": k, **knobs, "reference": f"ode K={reference_steps}",
                     "latent_mse": float((got.latents - ref.latents).pow(2).mean()),
                     "reference_latent_sq": float(ref.latents.pow(2).mean()),
                     "token_agreement": float((got.ids == ref.ids).float().mean()), "num_samples": num_samples})
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| sampler | K | latent MSE to the reference | token agreement |", "|---|---|---|---|"]
    lines += [f"| {r['sampler']} | {r['steps']} | {r['latent_mse']:.5f} | {r['token_agreement']:.3f} |" for r in rows]
    return "\n".join(lines) + f"\n\nreference: the teacher's {rows[0]['reference']} from the same noise\n"


def main(argv: list[str] | None = None) -> None:
    from textflow.checkpoint import load_run

    parser = argparse.ArgumentParser(prog="python -m textflow.sampling.fidelity", description=__doc__.splitlines()[0])
    parser.add_argument("ckpt", help="a checkpoint with the sampler's weights (distilled.ckpt, flow_map.ckpt, ...)")
    parser.add_argument("--sampler", default="ode", help="a registered sampler (ode, student, flow_map, ...)")
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--gamma", type=float, default=None, help="the sampler's gamma (default: its own)")
    parser.add_argument("--reference-steps", type=int, default=64)
    parser.add_argument("--num-samples", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="folder for fidelity.json / .md (default: beside CKPT)")
    args = parser.parse_args(argv)
    loaded = load_run(args.ckpt)
    rows = fidelity_rows(loaded, sampler=args.sampler, steps=args.steps, reference_steps=args.reference_steps,
                         num_samples=args.num_samples, batch_size=args.batch_size, seed=args.seed, gamma=args.gamma)
    out = Path(args.out) if args.out else Path(args.ckpt).parent / f"fidelity_{args.sampler}"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "fidelity.json", rows)
    atomic_write_text(out / "fidelity.md", markdown(rows))
    print(markdown(rows) + f"\nwritten to {out}")


if __name__ == "__main__":
    from textflow.cli import guarded

    torch.set_grad_enabled(False)
    guarded(main, None)  # a bad checkpoint or value: one line, exit status 2
