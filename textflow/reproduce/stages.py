"""The plan of ``python -m textflow.reproduce``: one command per stage, each with the file that
exists once it finished (docs/reproduce.md). Commands are the public ones a researcher would type
(``train.py``, ``sample.py``, ``python -m textflow.diagnostics``), so the report can print them."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from textflow.reproduce.budgets import Budget


@dataclass(frozen=True)
class Stage:
    """``argv`` runs from the repository root with the project's Python; ``done`` (relative to the
    output folder) exists once the stage finished, so a rerun skips it; ``needs``: earlier stages."""

    name: str
    argv: tuple[str, ...]
    done: str
    needs: tuple[str, ...] = ()
    purpose: str = ""

    def shell(self) -> str:
        """The command as a researcher would type it."""
        return "python " + " ".join(shlex.quote(a) for a in self.argv)

    def finished(self, out: Path) -> bool:
        return (out / self.done).is_file()


# The paper's text model is a token embedding with a sharp readout: the quickstart's budget on the embedding
# latent (experiment=quickstart_embed) at scale 1, as the quickstart was before its soft and then one-hot
# latents (docs/recipes.md), so the reproduced findings keep their regime.
TEXT_MODEL = ("experiment=quickstart_embed", "autoencoder.scale=1.0")


def _train(name: str, out: Path, overrides: tuple[str, ...], *, needs=(), purpose="", final="final.ckpt") -> Stage:
    run = out / name
    return Stage(name, ("train.py", *overrides, f"hydra.run.dir={run}"), f"{name}/checkpoints/{final}",
                 tuple(needs), purpose)


def _sweep(name: str, out: Path, ckpt: str, overrides: tuple[str, ...], budget: Budget, *, needs, purpose) -> Stage:
    n = budget.samples
    return Stage(name, ("sample.py", "-m", f"ckpt_path={out / ckpt}", *overrides, f"num_samples={n}",
                        f"batch_size={n}", "print_samples=0", f"hydra.sweep.dir={out / name}"),
                 f"{name}/report.csv", tuple(needs), purpose)


def _diagnose(name: str, out: Path, ckpt: str, steps: tuple[int, ...], budget: Budget, *, needs, purpose) -> Stage:
    return Stage(name, ("-m", "textflow.diagnostics", str(out / ckpt), "--out", str(out / name),
                        "--blocks", str(budget.blocks), "--steps", *map(str, steps)),
                 f"{name}/diagnostics.json", tuple(needs), purpose)


def _csv(values) -> str:
    return ",".join(map(str, values))


def plan(budget: Budget, out: Path) -> list[Stage]:
    """Every stage, in an order where each stage's ``needs`` come first."""
    out = Path(out)
    text_ckpt, ar_ckpt = "text/checkpoints/final.ckpt", "ar/checkpoints/final.ckpt"
    return [
        _train("text", out, (*TEXT_MODEL, *budget.text),
               purpose="the quickstart text model: sampler sweep, K = 1 collapse, CCI, adaptive sampler, teacher"),
        _train("tube", out, ("experiment=diag_tube", *budget.tube),
               purpose="the diag_tube text model: DABI, flip curves, tube law, row space"),
        _train("smooth_ae", out, ("experiment=smooth", "stage=autoencoder", *budget.smooth_ae),
               purpose="the smooth image control, stage one"),
        _train("smooth", out, ("experiment=smooth", "stage=flow",
                               f"autoencoder_ckpt={out / 'smooth_ae/checkpoints/final.ckpt'}", *budget.smooth_flow),
               needs=("smooth_ae",), purpose="the smooth image control's flow"),
        _train("ar_ae", out, ("experiment=ar_bottleneck", "stage=autoencoder", *budget.ar_ae),
               purpose="the bottlenecked AR decoder, stage one"),
        _train("ar", out, ("experiment=ar_bottleneck", "stage=flow",
                           f"autoencoder_ckpt={out / 'ar_ae/checkpoints/final.ckpt'}", *budget.ar_flow),
               needs=("ar_ae",), purpose="the flow over the AR decoder's latents"),
        _train("distill", out, (TEXT_MODEL[0], "stage=distill", f"teacher_ckpt={out / text_ckpt}",
                                *budget.distill),
               needs=("text",), final="distilled.ckpt", purpose="progressive distillation of the text model"),
        _sweep("sweep", out, text_ckpt, ("sampler=ode,sde,adaptive,commit", f"sampler.steps={_csv(budget.sweep_steps)}"),
               budget, needs=("text",), purpose="ODE vs SDE vs adaptive vs commit over K"),
        _sweep("tube_sweep", out, "tube/checkpoints/final.ckpt",
               ("sampler=ode,sde,adaptive", f"sampler.steps={_csv(k for k in budget.sweep_steps if k in (4, 8))}"),
               budget, needs=("tube",), purpose="ODE vs SDE vs adaptive on the diag_tube model (K = 4, 8)"),
        _sweep("student", out, "distill/checkpoints/distilled.ckpt",
               ("sampler=student", f"sampler.steps={_csv(budget.student_steps)}", "sampler.gamma=0,1.5"),
               budget, needs=("distill",), purpose="the distilled student's K table, ODE and SDE steps"),
        _sweep("ar_feed", out, ar_ckpt, ("sampler=ode", "sampler.steps=4", "readout_feed=token,soft"),
               budget, needs=("ar",), purpose="the commit ablation on whole generations"),
        _diagnose("diag_tube", out, "tube/checkpoints/final.ckpt", (4, 8, 16), budget, needs=("tube",),
                  purpose="DABI, flip curves, tube law and row space of the text model"),
        _diagnose("diag_smooth", out, "smooth/checkpoints/final.ckpt", (4, 8, 16), budget, needs=("smooth",),
                  purpose="DABI of the smooth control"),
        _diagnose("diag_ar", out, ar_ckpt, (4, 16), budget, needs=("ar",),
                  purpose="structural CCI and the commit ablation of the AR decoder"),
    ]
