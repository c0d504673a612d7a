"""Sampler fidelity: how far a sampler lands from a reference sampler started from the same noise
(docs/samplers.md, "The few-step frontier" and ``adaptive``'s resolution).

``python -m textflow.sampling.fidelity CKPT --sampler flow_map --steps 1 2 4 8`` draws ``--num-samples``
noises (the seeds of ``sample.py``, so sample ``i`` starts from the same noise as there), runs the
reference (by default the teacher's ``ode`` at ``--reference-steps 64``: the flow's own answer, nearly
free of discretisation error) and the chosen sampler at every K, and reports per K the mean squared
distance of the final latents to the reference's and the share of tokens whose readout agrees. A
student that matches its teacher's ODE scores near the teacher's fine-grid values; a gen-PPL that
improves while the agreement falls means the student has learned another distribution, not a faster
route to the teacher's.

Both samplers are specs with knobs (:func:`textflow.samplers.spec.parse_sampler`), so the same tool asks
how much a cheaper setting changes the samples: ``--sampler adaptive:levels=16:gamma=0.75 --reference
adaptive:levels=null:gamma=0.75 --reference-steps same`` compares the two at every K from the same noise
(stochastic samplers draw the same per-sample noise; ``textflow.noise``), and ``--sampler ode --reference
ode --reference-steps same --reference-cpu-linear aten`` what the oneDNN CPU linears
(:mod:`textflow.kernels.linear`) change against PyTorch's own. Writes ``fidelity.json``,
``fidelity.md`` and ``fidelity.png`` (token agreement and latent distance against K) into ``--out``."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from textflow.checks import require_int
from textflow.io import atomic_write_json, atomic_write_text
from textflow.kernels.linear import use_cpu_linear
from textflow.samplers import Sampler
from textflow.samplers.spec import parse_sampler
from textflow.sampling.generate import generate


def fidelity_rows(loaded, *, sampler: str, steps: list[int], reference: str = "ode", reference_steps: int | None = 64,
                  num_samples: int = 64, batch_size: int = 32, seed: int = 0,
                  reference_cpu_linear: str | None = None) -> list[dict]:
    """One row per K: ``latent_mse`` and ``token_agreement`` of ``sampler`` against ``reference`` (both
    specs, :func:`textflow.samplers.spec.parse_sampler`) at ``reference_steps`` (None: the same K) from the
    same noise (knobs such as ``gamma`` go in the spec: ``sde:gamma=0.5``). ``reference_cpu_linear``
    (``onednn`` | ``aten``): run the reference on those CPU inference linears (:mod:`textflow.kernels.linear`),
    which measures what the kernel alone changes when ``reference`` is ``sampler``. ``loaded``: a
    :class:`textflow.checkpoint.LoadedRun`."""
    seq_len = int(loaded.info["seq_len"])
    if reference_steps is not None:
        require_int("--reference-steps", reference_steps, low=1, hint=" (or 'same': the sampler's K)")

    def run(spec: str, k: int, cpu_linear: str | None = None):
        name, knobs = parse_sampler(spec)
        s = Sampler(name=name, steps=k, **knobs)
        with use_cpu_linear(cpu_linear):
            return generate(s.denoiser(loaded), s, num_samples=num_samples, seq_len=seq_len, seed=seed,
                            batch_size=batch_size)

    label = reference if reference_cpu_linear is None else f"{reference} ({reference_cpu_linear} linears)"
    fixed = None if reference_steps is None else run(reference, reference_steps, reference_cpu_linear)
    rows = []
    for k in steps:
        got = run(sampler, k)
        ref = fixed if fixed is not None else run(reference, k, reference_cpu_linear)
        rows.append({"sampler": sampler, "steps": k,
                     "reference": f"{label} K={k if reference_steps is None else reference_steps}",
                     "latent_mse": float((got.latents - ref.latents).pow(2).mean()),
                     "reference_latent_sq": float(ref.latents.pow(2).mean()),
                     "token_agreement": float((got.ids == ref.ids).float().mean()),
                     "sequences_identical": float((got.ids == ref.ids).all(dim=-1).float().mean()),
                     "num_samples": num_samples})
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| sampler | K | reference | latent MSE to the reference | token agreement | identical sequences |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['sampler']} | {r['steps']} | {r['reference']} | {r['latent_mse']:.5f} | {r['token_agreement']:.4f} "
              f"| {r['sequences_identical']:.3f} |" for r in rows]
    return "\n".join(lines) + "\n\nboth from the same noise (the seeds of sample.py)\n"


def plot(rows: list[dict], path: Path) -> Path:
    """Token agreement (left axis) and latent MSE (right axis, log scale) of the sampler against K."""
    from textflow.plots import finish, new_axes

    fig, ax = new_axes()
    ks = [r["steps"] for r in rows]
    ax.plot(ks, [r["token_agreement"] for r in rows], "o-", label=f"{rows[0]['sampler']}: token agreement")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("K (steps)")
    ax.set_ylabel("share of tokens equal to the reference's")
    mse = ax.twinx()
    mse.plot(ks, [max(r["latent_mse"], 1e-12) for r in rows], "s--", color="tab:red", label="latent MSE")
    mse.set_yscale("log")
    mse.set_ylabel("latent MSE to the reference")
    ax.set_title(f"against {rows[0]['reference'].rsplit(' K=', 1)[0]}, same noise", fontsize=9)
    mse.legend(fontsize=7, loc="lower right")
    return finish(fig, ax, path)


def reference_steps_arg(value: str) -> int | None:
    """``--reference-steps``: a positive integer, or ``same`` (None: the sampler's own K)."""
    if value == "same":
        return None
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is neither an integer K nor 'same'") from None


def main(argv: list[str] | None = None) -> None:
    from textflow.checkpoint import load_run

    parser = argparse.ArgumentParser(prog="python -m textflow.sampling.fidelity", description=__doc__.splitlines()[0])
    parser.add_argument("ckpt", help="a checkpoint with the sampler's weights (distilled.ckpt, flow_map.ckpt, ...)")
    parser.add_argument("--sampler", default="ode",
                        help="a registered sampler with optional knobs (ode, flow_map, adaptive:levels=16:gamma=0.75, ...)")
    parser.add_argument("--reference", default="ode", help="the reference sampler, a spec like --sampler (default: ode)")
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--reference-steps", type=reference_steps_arg, default=64,
                        help="the reference's K, or 'same' for the sampler's own K (default: 64)")
    parser.add_argument("--num-samples", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reference-cpu-linear", choices=["onednn", "aten"], default=None,
                        help="run the reference on these CPU inference linears (default: the sampler's)")
    parser.add_argument("--out", default=None, help="folder for fidelity.json / .md (default: beside CKPT)")
    args = parser.parse_args(argv)
    loaded = load_run(args.ckpt)
    rows = fidelity_rows(loaded, sampler=args.sampler, steps=args.steps, reference=args.reference,
                         reference_steps=args.reference_steps, num_samples=args.num_samples,
                         batch_size=args.batch_size, seed=args.seed, reference_cpu_linear=args.reference_cpu_linear)
    out = Path(args.out) if args.out else Path(args.ckpt).parent / f"fidelity_{args.sampler.replace(':', '_')}"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "fidelity.json", rows)
    atomic_write_text(out / "fidelity.md", markdown(rows))
    plot(rows, out / "fidelity.png")
    print(markdown(rows) + f"\nwritten to {out}")


if __name__ == "__main__":
    from textflow.cli import guarded

    torch.set_grad_enabled(False)
    guarded(main, None)  # a bad checkpoint or value: one line, exit status 2
