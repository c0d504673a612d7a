"""``report.md`` of ``python -m textflow.reproduce``: the claims table, the figures, and the exact
command and wall time of every stage behind the numbers (docs/reproduce.md)."""

from __future__ import annotations

import platform
import shutil
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from textflow.io import atomic_write_json, atomic_write_text
from textflow.reproduce.budgets import Budget
from textflow.reproduce.claims import Claim
from textflow.reproduce.stages import Stage

# (stage folder, figure file, caption): the figures a reader would rather look at than read
FIGURES = (
    ("sweep", "metric_vs_K_gen_ppl.png", "gen-PPL against K, every sampler (text model)"),
    ("sweep", "metric_vs_K_unigram_entropy.png", "unigram entropy against K"),
    ("sweep", "gen_ppl_vs_injected_noise.png", "gen-PPL against the noise each setting injected (ode at 0)"),
    ("tube_sweep", "gen_ppl_vs_injected_noise.png", "the same on the diag_tube model"),
    ("student", "metric_vs_K_gen_ppl.png", "the student's gen-PPL against K (ODE and SDE steps)"),
    ("diag_tube", "dabi_vs_f.png", "DABI against the perturbation scale f (text model)"),
    ("diag_tube", "flip_vs_s.png", "flip rate against s(t) for K = 4, 8, 16, with the tube-law prediction"),
    ("diag_smooth", "dabi_vs_f.png", "DABI against f (smooth image control)"),
)


def write_report(out: Path, *, budget: Budget, stages: Sequence[Stage], claims: Sequence[Claim], status: dict) -> Path:
    """Write ``report.md``, ``claims.json`` and ``figures/`` into ``out``; returns the report's path."""
    out = Path(out)
    figures = _copy_figures(out)
    wall = sum(s.get("wall_s", 0.0) for s in status.values())
    lines = [
        "# arXiv 2606.30705 reproduced by textflow",
        "",
        f"Budget **{budget.name}**: {budget.summary}. Written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on "
        f"{platform.machine()} / {platform.system()}; stage wall time {wall / 60:.1f} min in all (stages run by "
        "earlier invocations included). The paper's numbers are from ELF-B on OpenWebText; these models are "
        "tiny, so a verdict judges the direction and the order of a finding, not its digits.",
        "",
        "| # | claim | paper | textflow | verdict | stages |",
        "|---|---|---|---|---|---|",
    ]
    for i, c in enumerate(claims, 1):
        lines.append(f"| {i} | {c.title} | {c.paper} | {c.measured} | **{c.verdict}** | {', '.join(c.stages)} |")
    lines += ["", "## Verdict rules", ""]
    lines += [f"{i}. {c.title}: {c.rule or 'not measured'}." for i, c in enumerate(claims, 1)]
    if figures:
        lines += ["", "## Figures", ""]
        lines += [f"![{caption}]({path.relative_to(out)})  \n*{caption}* (`{stage}`)" for stage, path, caption in figures]
    lines += ["", "## Commands (run from the repository root)", "",
              "| stage | what it is for | wall time | command |", "|---|---|---|---|"]
    for stage in stages:
        s = status.get(stage.name, {})
        wall_s = f"{s['wall_s']:.0f} s" if "wall_s" in s else s.get("state", "not run")
        lines.append(f"| `{stage.name}` | {stage.purpose} | {wall_s} | `{stage.shell()}` |")
    lines += ["", "Each sampling stage's own `report.md` (every sweep point with its CIs) and each diagnostics "
              "stage's `diagnostics.md` sit in the stage's folder; the logs in `logs/`.", ""]
    atomic_write_json(out / "claims.json", [asdict(c) for c in claims])
    return atomic_write_text(out / "report.md", "\n".join(lines))


def _copy_figures(out: Path) -> list[tuple[str, Path, str]]:
    found = []
    (out / "figures").mkdir(exist_ok=True)
    for stage, name, caption in FIGURES:
        source = out / stage / name
        if source.is_file():
            target = out / "figures" / f"{stage}_{name}"
            shutil.copyfile(source, target)
            found.append((stage, target, caption))
    return found
