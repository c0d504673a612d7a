"""One-command diagnostics report for a checkpoint (science.md §4):

    python -m textflow.diagnostics CKPT [--out DIR] [--blocks 64] [--steps 4 8 16]

On held-out blocks of the checkpoint's own corpus: clean readout accuracy and CE, the oracle
roll-in flip rate at the terminal time of K-step samplers against s(t) with the tube-law prediction,
and DABI curves at the K = steps[0] terminal residual (directions ``residual`` and ``boundary``,
responses ``flip`` and ``ce``) with the residual's alignment to the boundary normal. Writes
``diagnostics.json``, ``diagnostics.md``, ``dabi_vs_f.png`` and ``flip_vs_s.png``. A continuous
decoder (the smooth control) gets DABI with the MSE response at each K; an AR decoder its structural
CCI and the commit ablation. Every noise draw comes from a named hashed stream (textflow.noise).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F

from textflow.checkpoint import load_run
from textflow.diagnostics import (boundary_geometry, dabi_curve, mse_dabi_curve, oracle_flip_rate,
                                  terminal_residual, terminal_time)
from textflow.diagnostics.ablation import commit_ablation
from textflow.diagnostics.cci import cci_readout
from textflow.diagnostics.rollin import curve_spread, flip_curve
from textflow.diagnostics import tube_law
from textflow.diagnostics.rowspace import row_space_fraction
from textflow.noise import stream_generator
from textflow.plots import finish, new_axes
from textflow.sampling.reference import heldout_blocks

F_GRID = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)


@torch.no_grad()
def measure(den, ids: torch.Tensor, *, steps=(4, 8, 16), seed: int = 0, flip: bool = True, dabi: bool = True,
            f_grid=F_GRID, curves: bool = False) -> dict:
    """All readout diagnostics of denoiser ``den`` on held-out token blocks ``ids`` (B, L); with
    ``curves``, also the oracle flip rate at every step of each K's grid and the curves' spread."""
    x = den.embed(ids)
    logits = den.readout(x).float()
    out = {"blocks": len(ids), "seq_len": ids.shape[1], "latent_dim": x.shape[-1],
           "clean_readout_acc": float((logits.argmax(-1) == ids).float().mean()),
           "clean_readout_ce": float(F.cross_entropy(logits.flatten(0, 1), ids.flatten()))}
    law = tube_law(boundary_geometry(den.readout, x).geometric_margin)
    out["tube"] = {"density_at_zero": law.density_at_zero, "median_margin": law.median_margin}
    if flip:
        out["flip"] = []
        for k in steps:
            t = terminal_time(k)
            s = float(den.path.noise_to_signal(torch.tensor(t)))
            observed = oracle_flip_rate(den, x, t, generator=stream_generator(seed, "diagnostics/terminal"))
            out["flip"].append({"K": k, "t": t, "s": s, "observed_flip": observed,
                                "predicted_flip": law.predicted_flip(s),
                                "predicted_flip_tail": law.predicted_flip_tail(s)})
    if curves:
        # independent noise per K: on a uniform grid the K = 4 times are among the K = 16 times, and
        # with shared noise the curves would coincide exactly there by construction
        out["flip_curves"] = {str(k): flip_curve(den, x, k, generator=stream_generator(seed, "diagnostics/curve", k))
                              for k in steps}
        out["flip_curve_spread"] = curve_spread({int(k): rows for k, rows in out["flip_curves"].items()})
    if dabi:
        k0 = steps[0]
        r = terminal_residual(den, x, terminal_time(k0), generator=stream_generator(seed, "diagnostics/terminal"))
        out["dabi"], out["dabi_K"] = {}, k0
        for direction in ("residual", "boundary"):
            for kind in ("flip", "ce"):
                c = dabi_curve(den.readout, x, r, direction=direction, response_kind=kind, f_grid=f_grid,
                               generator=stream_generator(seed, "diagnostics/isotropic"))
                out["dabi"][f"{direction}/{kind}"] = {"f": c.f, "ratio": c.ratio, "structured": c.structured,
                                                      "isotropic": c.isotropic, "lower_bound": c.lower_bound}
                out["alignment_cos2"], out["isotropic_cos2"] = c.alignment_cos2, c.isotropic_cos2
        iso = torch.randn(x.shape, generator=stream_generator(seed, "diagnostics/row_space")).to(x)
        out["row_space"] = {"residual": row_space_fraction(den.readout, x, r),
                            "isotropic": row_space_fraction(den.readout, x, iso)}
    return out


@torch.no_grad()
def measure_continuous(den, images: torch.Tensor, *, steps=(4, 8, 16), seed: int = 0, f_grid=F_GRID) -> dict:
    """The smooth control: DABI with the MSE response at each K's terminal residual (no tokens, so
    no flip rate, tube law or boundary); science.md §4 expects DABI ≈ 1 here."""
    x = den.embed(images)
    out = {"blocks": len(images), "seq_len": x.shape[1], "latent_dim": x.shape[-1], "continuous": True,
           "clean_recon_mse": float((den.readout(x).float() - images.float()).pow(2).mean()), "dabi_by_K": {}}
    for k in steps:
        r = terminal_residual(den, x, terminal_time(k), generator=stream_generator(seed, "diagnostics/terminal"))
        c = mse_dabi_curve(den.readout, x, r, f_grid=f_grid,
                           generator=stream_generator(seed, "diagnostics/isotropic"))
        out["dabi_by_K"][str(k)] = {"f": c.f, "ratio": c.ratio, "structured": c.structured, "isotropic": c.isotropic,
                                    "lower_bound": c.lower_bound, "residual_rms": float(r.pow(2).mean().sqrt())}
    out["dabi_K"] = steps[0]
    out["dabi"] = {"residual/mse": out["dabi_by_K"][str(steps[0])]}
    return out


@torch.no_grad()
def measure_autoregressive(den, ids: torch.Tensor, *, steps=(4, 8, 16), seed: int = 0) -> dict:
    """An AR decoder (categorical commitment): its structural CCI and the commit ablation, greedy
    decodes with committed tokens vs expected embeddings fed back, on clean latents and on the oracle
    roll-in ``x_hat`` at each K's terminal time (DABI is not run: one decode is L network calls)."""
    x = den.embed(ids)
    out = {"autoregressive": True, "blocks": len(ids), "seq_len": ids.shape[1], "latent_dim": x.shape[-1],
           "cci_readout": cci_readout(den.autoencoder, ids.shape[1]), "ablation": {}}
    inputs = {"clean": x}
    for k in steps:
        noise = stream_generator(seed, "diagnostics/terminal")
        inputs[f"K{k}"] = x + terminal_residual(den, x, terminal_time(k), generator=noise)
    for name, latents in inputs.items():
        decodes = commit_ablation(den.autoencoder, latents, ids)
        out["ablation"][name] = {feed: stats.as_dict() for feed, stats in decodes.items()}
    return out


def measure_for_readout(den, batch: torch.Tensor, *, steps=(4, 8, 16), seed: int = 0, flip: bool = True,
                        dabi: bool = True) -> dict | None:
    """What the training callback measures, by the kind of readout: an AR decoder gets the commit
    ablation at ``steps[0]``, a categorical parallel readout :func:`measure`, a continuous decoder
    :func:`measure_continuous` (``None`` when ``dabi`` is off, its only diagnostic)."""
    if not den.autoencoder.parallel_readout:
        return measure_autoregressive(den, batch, steps=tuple(steps)[:1], seed=seed)
    if den.autoencoder.categorical:
        return measure(den, batch, steps=steps, seed=seed, flip=flip, dabi=dabi)
    return measure_continuous(den, batch, steps=steps, seed=seed) if dabi else None


def diagnose(ckpt: str, *, blocks: int = 64, steps=(4, 8, 16), seed: int = 0) -> dict:
    """:func:`measure` on held-out blocks of the checkpoint's own corpus (held-out images for the
    smooth control: :func:`measure_continuous`)."""
    loaded = load_run(ckpt)
    if not loaded.module.net["autoencoder"].categorical:
        from hydra.utils import instantiate

        images = instantiate(loaded.config.data).images("val")[:blocks]
        return {"checkpoint": str(ckpt), **measure_continuous(loaded.denoiser(), images, steps=steps, seed=seed)}
    seq_len = int(loaded.info["seq_len"])
    ids = torch.tensor(heldout_blocks(loaded.config.data.corpus, loaded.tokenizer, seq_len=seq_len, num=blocks))
    if not loaded.module.net["autoencoder"].parallel_readout:
        return {"checkpoint": str(ckpt), **measure_autoregressive(loaded.denoiser(), ids, steps=steps, seed=seed)}
    return {"checkpoint": str(ckpt), **measure(loaded.denoiser(), ids, steps=steps, seed=seed, curves=True)}


def scalars(result: dict) -> dict[str, float]:
    """The ``diag/...`` scalars a dashboard shows (f = 1 DABI values, flip rates, tube law, alignment)."""
    if result.get("autoregressive"):
        return {"diag/cci_readout": result["cci_readout"],
                **{f"diag/ablation_{name}_{feed}_acc": st["token_acc"]
                   for name, row in result["ablation"].items() for feed, st in row.items()}}
    if result.get("continuous"):
        return {"diag/clean_recon_mse": result["clean_recon_mse"],
                **{f"diag/dabi_residual_mse_K{k}_f1": c["ratio"][F_GRID.index(1.0)] for k, c in result["dabi_by_K"].items()}}
    out = {"diag/clean_readout_acc": result["clean_readout_acc"], "diag/clean_readout_ce": result["clean_readout_ce"],
           "diag/p_m0": result["tube"]["density_at_zero"]}
    for row in result.get("flip", []):
        out[f"diag/flip_K{row['K']}"] = row["observed_flip"]
        out[f"diag/tube_pred_K{row['K']}"] = row["predicted_flip"]
        out[f"diag/tube_tail_K{row['K']}"] = row["predicted_flip_tail"]
    for name, c in result.get("dabi", {}).items():
        i = min(range(len(c["f"])), key=lambda j: abs(c["f"][j] - 1.0))
        if c["ratio"][i] == c["ratio"][i]:  # skip 0 / 0
            out[f"diag/dabi_{name.replace('/', '_')}_f1"] = c["ratio"][i]
    if "row_space" in result:
        out["diag/row_space_residual"] = result["row_space"]["residual"]
        out["diag/row_space_isotropic"] = result["row_space"]["isotropic"]
    if "alignment_cos2" in result:
        out["diag/alignment_cos2"], out["diag/isotropic_cos2"] = result["alignment_cos2"], result["isotropic_cos2"]
    return out


def figures(result: dict, out_dir: Path, *, prefix: str = "", loggers=(), step: int = 0) -> list[Path]:
    """``dabi_vs_f.png`` and ``flip_vs_s.png`` in ``out_dir``, also sent to image-taking ``loggers``."""
    if "dabi" not in result or ("flip" not in result and not result.get("continuous")):
        return []
    fig, ax = new_axes()
    for name, c in result["dabi"].items():
        line, = ax.plot(c["f"], c["ratio"], marker="o", label=name)
        bounds = [(f, v) for f, v, lb in zip(c["f"], c["ratio"], c["lower_bound"]) if lb]
        if bounds:  # isotropic response was 0: the point is a lower bound
            ax.plot(*zip(*bounds), ls="none", marker="^", ms=10, mfc="none", color=line.get_color())
    ax.axhline(1.0, color="k", lw=1, ls="--", label="isotropic = 1 (^ = lower bound)")
    ax.set_yscale("log")
    ax.set_xlabel("f (perturbation scale)")
    ax.set_ylabel(f"DABI (structured / isotropic), K={result['dabi_K']}")
    paths = [finish(fig, ax, out_dir / f"{prefix}dabi_vs_f.png", key="diag/dabi_vs_f", loggers=loggers, step=step)]
    if result.get("continuous"):
        return paths
    fig, ax = new_axes()
    for k, rows in result.get("flip_curves", {}).items():  # every step of each K's grid
        ax.plot([r["s"] for r in rows], [r["flip"] for r in rows], marker=".", lw=1, alpha=0.7,
                label=f"K={k}, every step")
    s = [row["s"] for row in result["flip"]]
    ax.plot(s, [row["observed_flip"] for row in result["flip"]], marker="o", label="observed (oracle roll-in)")
    ax.plot(s, [row["predicted_flip"] for row in result["flip"]], marker="x", ls="--", label="tube law (linear)")
    if all("predicted_flip_tail" in row for row in result["flip"]):
        ax.plot(s, [row["predicted_flip_tail"] for row in result["flip"]], marker="+", ls=":", label="margin tail")
    for row in result["flip"]:
        ax.annotate(f"K={row['K']}", (row["s"], row["observed_flip"]), fontsize=7)
    if "flip_curves" in result:
        ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=1e-4)  # flip rates span 1e-4 .. 1; 0 stays on the axis
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel("s(t) (noise-to-signal)")
    ax.set_ylabel("flip rate after one network call")
    paths.append(finish(fig, ax, out_dir / f"{prefix}flip_vs_s.png", key="diag/flip_vs_s", loggers=loggers, step=step))
    return paths


def markdown_continuous(result: dict) -> str:
    lines = [f"# Diagnostics of `{result['checkpoint']}` (continuous decoder)", "",
             f"{result['blocks']} held-out examples, {result['seq_len']} latent positions of d = {result['latent_dim']}; "
             f"clean reconstruction MSE {result['clean_recon_mse']:.5f}.", "",
             "DABI with the MSE response at each K's terminal residual (structured / norm-matched isotropic):", "",
             "| K | residual RMS | " + " | ".join(f"f={f}" for f in F_GRID) + " |", "|---|---|" + "---|" * len(F_GRID)]
    for k, c in result["dabi_by_K"].items():
        lines.append(f"| {k} | {c['residual_rms']:.4f} | " + " | ".join(f"{v:.3g}" for v in c["ratio"]) + " |")
    return "\n".join(lines) + "\n"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.3g}" if b and b == b else "n/a"


def markdown_autoregressive(result: dict) -> str:
    lines = [f"# Diagnostics of `{result['checkpoint']}` (autoregressive decoder)", "",
             f"{result['blocks']} held-out blocks of {result['seq_len']} tokens; latent d = {result['latent_dim']}; "
             f"structural CCI of the readout {result['cci_readout']:.4f}.", "",
             "Commit ablation (greedy decodes; `token` feeds back the committed token, `soft` the expected "
             "embedding; K rows decode the oracle roll-in x̂ at that K's terminal time):", "",
             "| latents | feed | token accuracy | mean confidence | unigram entropy | distinct-1 | adjacent repeats |",
             "|---|---|---|---|---|---|---|"]
    for name, row in result["ablation"].items():
        for feed, st in row.items():
            lines.append(f"| {name} | {feed} | {st['token_acc']:.4f} | {st['mean_confidence']:.3f} | "
                         f"{st['unigram_entropy']:.3f} | {st['distinct_1']:.3f} | {st['adjacent_repeat']:.3f} |")
    return "\n".join(lines) + "\n"


def markdown(result: dict) -> str:
    if result.get("continuous"):
        return markdown_continuous(result)
    if result.get("autoregressive"):
        return markdown_autoregressive(result)
    lines = [f"# Diagnostics of `{result['checkpoint']}`", "",
             f"{result['blocks']} held-out blocks of {result['seq_len']} tokens; latent d = {result['latent_dim']}; "
             f"clean readout accuracy {result['clean_readout_acc']:.4f}, CE {result['clean_readout_ce']:.4f}.", "",
             f"Geometric margins of the clean latents: median {result['tube']['median_margin']:.4g}, "
             f"p_m(0) = {result['tube']['density_at_zero']:.4g}.", "",
             "| K | t | s(t) | observed flip | tube law (linear) | observed / linear | margin tail | observed / tail |",
             "|---|---|---|---|---|---|---|---|"]
    for row in result["flip"]:
        tail = row.get("predicted_flip_tail", float("nan"))
        lines.append(f"| {row['K']} | {row['t']:.4f} | {row['s']:.4f} | {row['observed_flip']:.4f} | "
                     f"{row['predicted_flip']:.4g} | {_ratio(row['observed_flip'], row['predicted_flip'])} | "
                     f"{tail:.4g} | {_ratio(row['observed_flip'], tail)} |")
    if "flip_curve_spread" in result:
        sp = result["flip_curve_spread"]
        lines += ["", f"Flip-rate curves over every step of K = {', '.join(result['flip_curves'])} against s(t): "
                  f"{sp['points']} points compared with the K = {sp['reference_K']} curve (interpolated in log s): "
                  f"|Δflip| median {sp['abs_median']:.4f}, max {sp['abs_max']:.4f}; relative median "
                  f"{sp['rel_median']:.3f}, max {sp['rel_max']:.3f}."]
    lines += ["", f"DABI at the K = {result['dabi_K']} terminal residual "
              f"(alignment cos²(r, n) = {result['alignment_cos2']:.4f} vs isotropic {result['isotropic_cos2']:.4f}; "
              f"row-space fraction {result['row_space']['residual']:.4f} vs isotropic "
              f"{result['row_space']['isotropic']:.4f}):", "",
              "| direction / response | " + " | ".join(f"f={f}" for f in F_GRID) + " |", "|---|" + "---|" * len(F_GRID)]
    for name, c in result["dabi"].items():
        cells = ["n/a" if v != v else ("≥ " if lb else "") + f"{v:.3g}" for v, lb in zip(c["ratio"], c["lower_bound"])]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
