"""Aggregate sampling runs into one table and metric-vs-K plots.

    python -m textflow.sampling.report outputs/sample/multiruns/<time>      # or any folder of runs

Every ``metrics.json`` under the folder becomes one row (sampler, K, gamma and the other knobs, NFE,
tokens/s, judge gen-PPL, entropy, diversity, confidence intervals, and every other number sample.py
wrote); the reference rows (held-out text, shuffled-word text; training images for the smooth control)
are added once. Writes ``report.csv``, ``report.md`` and ``metric_vs_K_<metric>.png`` into the folder,
and ``metric_vs_<gamma|sc_scale|cfg_scale>_<metric>.png`` when the sweep varies gamma or a guidance
scale (one line per sampler and K: the scale sweeps of docs/samplers.md), and
``<gen_ppl|unigram_entropy>_vs_injected_noise.png`` when runs report the noise they injected (``sde``,
``adaptive``; ``ode`` at 0: one point per setting), and ``gen_ppl_vs_unigram_entropy.png`` (every run and
reference row on the perplexity-entropy plane) when the runs were judged. A conditional run's
continuation blocks become ``cont_ppl_<row>`` and ``cont_mauve_<row>`` columns (docs/conditioning.md).
A sampler study (``hydra/sweeper=sampler_study``: the folder holds the sweeper's
``optimization_results.yaml`` or ``study.db``) adds the section "Sampler study" to ``report.md``: every
trial's objective (:mod:`textflow.sampling.objective`), the best point, and ``study_tradeoff.png``
(docs/samplers.md, "Tuning samplers with Optuna").
``ReportCallback`` runs the same at the end of every ``sample.py -m`` sweep.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

from textflow.errors import ConfigError
from textflow.io import atomic_write_text
from textflow.runs.outputs import unit_mismatch
from textflow.sampling.objective import FAILED, measured, penalised_objective

# the headline metrics of image samples (textflow.evaluation.images; not imported: this reader needs no torch)
IMAGE_METRICS = ("frechet", "nn_distance", "coverage_distance")

FIRST = ["sampler", "steps", "nfe", "tokens_per_s", "gen_ppl", "unigram_entropy", "distinct_1", "distinct_2",
         "distinct_3", "repetition_4", "self_bleu", "mode_collapse", *IMAGE_METRICS]  # the last: the image control
LOG_Y = ("gen_ppl", "tokens_per_s", "cont_ppl_conditional")
PLOTTED = ["unigram_entropy", "distinct_2", "repetition_4", "tokens_per_s", "gen_ppl", "frechet", "nn_distance",
           "cont_ppl_conditional"]
SCALES = ("sc_scale", "cfg_scale")  # recorded only when not 1; a sweep that varies one gets 1 filled in


def put(row: dict, key: str, value) -> None:
    """Scalars as they are, confidence intervals as ``[lo, hi]`` text; nested blocks are skipped."""
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        row[key] = f"[{value[0]:.4g}, {value[1]:.4g}]"
    elif isinstance(value, (int, float, str)):
        row[key] = value


def reference_label(name: str, block: dict) -> str:
    """``heldout text``, ``shuffled text``, ``train images``: a reference block scored with the image
    metrics (the smooth control's, written by :mod:`textflow.readouts.image_samples`) is of images."""
    return f"{name} {'images' if IMAGE_METRICS[0] in block else 'text'}"


def reference_rows(references: dict[str, dict]) -> list[dict]:
    rows = []
    for name, block in references.items():
        row = {"sampler": reference_label(name, block)}
        for key, value in block.items():
            put(row, key, value)
        rows.append(row)
    return rows


def collect(root: Path) -> tuple[list[dict], dict | None]:
    """Rows (one per run folder, sorted by sampler, knobs and K) and the reference blocks
    (held-out text, shuffled-word text) by name."""
    rows, references = [], {}
    for path in sorted(root.rglob("metrics.json")):
        mismatch = unit_mismatch(path.parent)
        if mismatch:  # a run killed between its two renames: report it, never mix two runs in one row
            rows.append({"run": str(path.parent.relative_to(root)), "sampler": None, "error": mismatch})
            continue
        data = json.loads(path.read_text())
        sampler = data.get("sampler", {})
        row = {"sampler": sampler.get("name"), "steps": sampler.get("steps"),
               **{k: v for k, v in sampler.items() if k not in ("name", "steps")}}
        for key, value in data.items():
            if key.startswith("reference/"):
                references.setdefault(key.split("/", 1)[1], value)
            elif key.startswith("continuation/") and isinstance(value, dict):
                name = key.split("/", 1)[1]
                put(row, f"cont_ppl_{name}", value.get("cont_ppl"))
                put(row, f"cont_ppl_{name}_ci95", value.get("cont_ppl_ci95"))
                put(row, f"cont_mauve_{name}", value.get("mauve"))
            elif key != "sampler":
                put(row, key, value)
        row["run"] = str(path.parent.relative_to(root)) if path.parent != root else "."
        rows.append(row)
    for path in sorted(root.rglob("error.json")):  # sweep points that stopped with a user error
        try:
            error = json.loads(path.read_text()).get("error")
        except (OSError, ValueError, AttributeError) as err:
            error = f"unreadable error.json ({type(err).__name__})"
        row = {"run": str(path.parent.relative_to(root)), "error": error}
        saved = path.parent / ".hydra" / "config.yaml"
        if saved.is_file():
            from omegaconf import OmegaConf

            sampler = OmegaConf.load(saved).get("sampler", {})
            row.update(sampler=sampler.get("name"), steps=sampler.get("steps"),
                       **{k: sampler[k] for k in KNOBS if k in sampler and k != "time"})
        rows.append(row)
    for scale in SCALES:
        if any(scale in r for r in rows):
            for r in rows:
                if r.get("sampler") is not None:
                    r.setdefault(scale, 1.0)
    rows.sort(key=lambda r: (str(r["sampler"]), str(r.get("gamma", "")), r.get("steps") or 0))
    return rows, references


KNOBS = ["gamma", "rule", "threshold", "closeness", "scale", "levels", "sc_scale", "cfg_scale", "time"]
MARKDOWN_EXTRA = ["injected_noise", "diag/cci", "diag/cci_readout", "gen_ppl_ci95", "unigram_entropy_ci95", "mauve",
                  "cont_ppl_conditional", "cont_ppl_conditional_ci95", "cont_ppl_unconditional", "cont_ppl_true",
                  "cont_mauve_conditional", "cont_mauve_unconditional", "judge", "num_samples", "error"]


def columns_of(rows: list[dict]) -> list[str]:
    """Every column: the headline ones first, then whatever else the runs recorded (for the CSV)."""
    seen = [c for c in FIRST[:2] + KNOBS + FIRST[2:] if any(c in r for r in rows)]
    for r in rows:
        seen += [k for k in r if k not in seen]
    return seen


def markdown_columns(rows: list[dict]) -> list[str]:
    """The readable subset for report.md (the CSV keeps everything)."""
    wanted = FIRST[:2] + KNOBS + FIRST[2:] + MARKDOWN_EXTRA
    return [c for c in wanted if any(r.get(c) not in (None, "") for r in rows)]


def fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def to_markdown(rows: list[dict], cols: list[str]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(fmt(r.get(c)) for c in cols) + " |")
    return "\n".join(lines) + "\n"


AXES = {"steps": ("K (sampler steps)", "K"), "gamma": ("gamma (noise re-injection)", "gamma"),
        "sc_scale": ("SC-CFG scale w (self-conditioning guidance)", "sc_scale"),
        "cfg_scale": ("CFG scale w_c (guidance on the prompt)", "cfg_scale")}


def plot(rows: list[dict], references: dict[str, dict], metric: str, out: Path, loggers: list = (), *,
         x: str = "steps") -> Path | None:
    """``metric_vs_<K|gamma|sc_scale|cfg_scale>_<metric>.png``: one line per setting of the other knobs (references as
    horizontal lines), also sent to ``loggers`` that take images (TensorBoard, wandb)."""
    from textflow.plots import finish, new_axes

    others = [k for k in ("steps", "gamma", "rule", *SCALES) if k != x]
    series: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        if isinstance(r.get(metric), (int, float)) and isinstance(r.get(x), (int, float)):
            label = r["sampler"] + "".join(f" {AXES.get(k, (k, k))[1]}={r[k]}" for k in others if k in r)
            series.setdefault(label, []).append((float(r[x]), float(r[metric])))
    if not series or max(len(v) for v in series.values()) < 2:
        return None
    fig, ax = new_axes()
    for label, points in sorted(series.items()):
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    for (name, block), style in zip(references.items(), ("--", ":", "-.")):
        if isinstance(block.get(metric), (int, float)):
            ax.axhline(block[metric], color="k", ls=style, lw=1, label=reference_label(name, block))
    if x == "steps":
        ax.set_xscale("log", base=2)
    if metric in LOG_Y:
        ax.set_yscale("log")
    ax.set_xlabel(AXES[x][0])
    ax.set_ylabel(metric)
    name = f"metric_vs_{AXES[x][1]}_{metric}"
    return finish(fig, ax, out / f"{name}.png", key=f"report/{name}", loggers=loggers)


MARKERS = {"ode": "s", "sde": "o", "adaptive": "^", "commit": "D", "student": "v", "heun": "P", "elf": "X"}


def scatter_by_k(ax, points: list[tuple[float, float, dict]], *, knobs: tuple[str, ...]) -> None:
    """One point per run ``(x, y, row)``: marker by sampler, colour by K (one legend entry per K), each
    annotated with its sampler and the ``knobs`` it sets (guidance scales only when not 1)."""
    for steps in sorted({p[2].get("steps") for p in points}, key=lambda k: k or 0):
        colour = ax.plot([], [])[0].get_color()
        for x, y, r in (p for p in points if p[2].get("steps") == steps):
            ax.scatter(x, y, marker=MARKERS.get(r["sampler"], "x"), color=colour)
            shown = "".join(f" {k}={r[k]}" for k in knobs if k in r and not (k in SCALES and r[k] == 1.0))
            ax.annotate(f"{r['sampler']}{shown}", (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.scatter([], [], color=colour, label=f"K={steps}")


def plot_against_noise(rows: list[dict], references: dict[str, dict], metric: str, out: Path,
                       loggers: list = ()) -> Path | None:
    """``<metric>_vs_injected_noise.png``: one point per run that reports ``injected_noise`` (``sde``,
    ``adaptive``; ``ode`` at 0), coloured by K: does a sampler reach the quality with less noise?"""
    from textflow.plots import finish, new_axes

    points = [(float(r["injected_noise"]), float(r[metric]), r) for r in rows
              if isinstance(r.get("injected_noise"), (int, float)) and isinstance(r.get(metric), (int, float))]
    points += [(0.0, float(r[metric]), r) for r in rows if r.get("sampler") == "ode"
               and "injected_noise" not in r and isinstance(r.get(metric), (int, float))]
    if len(points) < 2 or not any(p[0] > 0 for p in points):
        return None
    fig, ax = new_axes()
    scatter_by_k(ax, points, knobs=("gamma", "scale"))
    for (name, block), style in zip(references.items(), ("--", ":", "-.")):
        if isinstance(block.get(metric), (int, float)):
            ax.axhline(block[metric], color="k", ls=style, lw=1, label=reference_label(name, block))
    if metric in LOG_Y:
        ax.set_yscale("log")
    ax.set_xlabel("injected noise (sum over steps of the mean churn 1 - alpha)")
    ax.set_ylabel(metric)
    name = f"{metric}_vs_injected_noise"
    return finish(fig, ax, out / f"{name}.png", key=f"report/{name}", loggers=loggers)


def plot_frontier(rows: list[dict], references: dict[str, dict], out: Path, loggers: list = ()) -> Path | None:
    """``gen_ppl_vs_unigram_entropy.png``: every run as one point (marker by sampler, colour by K) and
    every reference row (held-out, shuffled, the AR twin) as a star: a low gen-PPL counts only at an
    entropy near real text's (arXiv 2606.30705, §5: gen-PPL is always read with entropy)."""
    from textflow.plots import finish, new_axes

    def both(r: dict) -> bool:
        return all(isinstance(r.get(k), (int, float)) for k in ("gen_ppl", "unigram_entropy"))

    points = [r for r in rows if both(r)]
    if len(points) < 2:
        return None
    fig, ax = new_axes()
    scatter_by_k(ax, [(r["unigram_entropy"], r["gen_ppl"], r) for r in points],
                 knobs=("gamma", "sc_scale", "cfg_scale"))
    for name, block in references.items():
        if both(block):
            ax.scatter(block["unigram_entropy"], block["gen_ppl"], marker="*", s=120, color="k", zorder=3)
            ax.annotate(reference_label(name, block), (block["unigram_entropy"], block["gen_ppl"]), fontsize=7,
                        xytext=(4, -10), textcoords="offset points")
    ax.set_yscale("log")
    ax.set_xlabel("unigram entropy (nats; real text: the held-out star)")
    ax.set_ylabel("gen_ppl (judge)")
    return finish(fig, ax, out / "gen_ppl_vs_unigram_entropy.png", key="report/gen_ppl_vs_unigram_entropy",
                  loggers=loggers)


SETTING = ("sampler", "steps", *KNOBS)


def seed_summary(rows: list[dict]) -> list[dict]:
    """Mean ± std over seeds for every sampler setting run with more than one seed."""
    import statistics

    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if "error" not in r:
            groups.setdefault(tuple(str(r.get(k, "")) for k in SETTING), []).append(r)
    out = []
    for members in groups.values():
        if len({m.get("seed") for m in members}) < 2:
            continue
        row = {k: members[0].get(k) for k in SETTING if k in members[0]}
        row["seeds"] = len(members)
        for key in FIRST[2:]:
            values = [m[key] for m in members if isinstance(m.get(key), (int, float)) and not isinstance(m[key], bool)]
            if len(values) == len(members):
                row[key] = f"{statistics.mean(values):.4g} ± {statistics.stdev(values):.2g}"
        out.append(row)
    return out


# a sampler study's folder: the Optuna sweeper's summary, and the SQLite file of hydra/sweeper=sampler_study
STUDY_FILES = ("optimization_results.yaml", "study.db")
STUDY_COLUMNS = ["run", "sampler", "steps", *KNOBS, "objective", "gen_ppl", "unigram_entropy", "error"]


def study_trials(root: Path, rows: list[dict]) -> list[dict]:
    """Every point of a sampler study with the objective ``sample.py`` returned for it to the sweeper,
    recomputed from its ``metrics.json`` with the ``objective`` knobs of its ``.hydra/config.yaml``; a
    point that failed or cannot be scored has :data:`~textflow.sampling.objective.FAILED` and its reason."""
    from omegaconf import OmegaConf

    trials = []
    for row in rows:
        folder = root / row.get("run", ".")
        saved = folder / ".hydra" / "config.yaml"
        knobs = OmegaConf.load(saved).get("objective") if saved.is_file() else None
        if knobs is None:  # not a sample.py point (or one written before the objective existed)
            continue
        trial = {k: row[k] for k in ("run", *SETTING, "error") if k in row}
        trial.update(objective=FAILED, entropy_tolerance=knobs.get("entropy_tolerance"),
                     penalty=knobs.get("penalty"))
        if "error" not in row and (folder / "metrics.json").is_file():
            metrics = json.loads((folder / "metrics.json").read_text())
            try:
                trial["objective"] = penalised_objective(
                    metrics, entropy_tolerance=trial["entropy_tolerance"], penalty=trial["penalty"])
            except ConfigError as err:
                trial["error"] = str(err)
            parts = measured(metrics)
            if parts is not None:
                trial.update(gen_ppl=parts[0], unigram_entropy=parts[1], heldout_entropy=parts[2])
        trials.append(trial)
    trials.sort(key=lambda t: t["objective"])
    return trials


def plot_study(trials: list[dict], best: dict, out: Path, loggers: list = ()) -> Path:
    """``study_tradeoff.png``: every scored trial on the gen-PPL / unigram-entropy plane, the best point
    starred, held-out text's entropy and the tolerance band around it shaded."""
    from textflow.plots import finish, new_axes

    scored = [t for t in trials if "gen_ppl" in t]
    fig, ax = new_axes()
    heldout, tolerance = best["heldout_entropy"], best["entropy_tolerance"]
    ax.axvspan(heldout - tolerance, heldout + tolerance, color="tab:green", alpha=0.15,
               label=f"held-out entropy ± {tolerance:g} (no penalty)")
    ax.axvline(heldout, color="tab:green", lw=1)
    ax.scatter([t["unigram_entropy"] for t in scored], [t["gen_ppl"] for t in scored], color="tab:blue",
               label=f"trials ({len(scored)})")
    ax.scatter([best["unigram_entropy"]], [best["gen_ppl"]], marker="*", s=220, color="tab:red", zorder=3,
               label=f"best (objective {best['objective']:.4g})")
    ax.set_yscale("log")
    ax.set_xlabel("unigram entropy (nats)")
    ax.set_ylabel("gen_ppl (judge)")
    return finish(fig, ax, out / "study_tradeoff.png", key="report/study_tradeoff", loggers=loggers)


def study_section(root: Path, rows: list[dict], loggers: list = ()) -> dict | None:
    """The "Sampler study" section of report.md and its figure, when ``root`` holds a study."""
    if not any((root / name).is_file() for name in STUDY_FILES):
        return None
    trials = study_trials(root, rows)
    if not trials:
        return None
    formula = ("objective = ln(gen_ppl) + penalty * max(0, |entropy - held-out entropy| - entropy_tolerance) "
               "(textflow/sampling/objective.py; docs/samplers.md, \"Tuning samplers with Optuna\")")
    lines = ["", "## Sampler study", "", f"{len(trials)} trials, {formula}."]
    summary = root / STUDY_FILES[0]
    if summary.is_file():
        from omegaconf import OmegaConf

        recorded = OmegaConf.to_container(OmegaConf.load(summary))
        lines.append(f"The sweeper's record ({STUDY_FILES[0]}): best_params {recorded.get('best_params')}, "
                     f"best_value {fmt(recorded.get('best_value'))}.")
    best = trials[0]
    figure = None
    if best["objective"] == FAILED:
        lines += ["", "No trial was scored (every point failed: see the error column)."]
    else:
        knobs = ", ".join(f"{k}={fmt(best[k])}" for k in ("sampler", "steps", *KNOBS) if k in best)
        low = best["heldout_entropy"] - best["entropy_tolerance"]
        high = best["heldout_entropy"] + best["entropy_tolerance"]
        objective = (f"{best['objective']:.6g} (entropy_tolerance={fmt(best['entropy_tolerance'])}, "
                     f"penalty={fmt(best['penalty'])})")
        entropy = (f"{fmt(best['unigram_entropy'])} (held-out {fmt(best['heldout_entropy'])}, "
                   f"band [{fmt(low)}, {fmt(high)}])")
        lines += ["", f"Best point: `{best['run']}`", "", f"- params: {knobs}", f"- objective: {objective}",
                  f"- gen_ppl: {fmt(best['gen_ppl'])}", f"- unigram_entropy: {entropy}"]
        figure = plot_study(trials, best, root, loggers)
        lines += ["", f"Trade-off plot: `{figure.name}`."]
    cols = [c for c in STUDY_COLUMNS if any(c in t for t in trials)]
    shown = [{**t, "objective": f"{t['objective']:.6g}"} for t in trials]  # close trials stay apart
    markdown = "\n".join(lines) + "\n\nEvery trial, best first:\n\n" + to_markdown(shown, cols)
    return {"trials": trials, "best": best, "markdown": markdown, "figures": [figure] if figure else []}


def build_report(root: str | Path, *, loggers: list = ()) -> dict:
    root = Path(root)
    rows, references = collect(root)
    if not rows:
        raise SystemExit(f"error: no metrics.json under {root}; pass a sample.py run or sweep folder")
    table = rows + reference_rows(references)
    cols = columns_of(table)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(table)
    atomic_write_text(root / "report.csv", buf.getvalue())
    markdown = to_markdown(table, markdown_columns(table))
    over_seeds = seed_summary(rows)
    if over_seeds:
        markdown += "\nMean ± std over seeds:\n\n" + to_markdown(over_seeds, columns_of(over_seeds))
    study = study_section(root, rows, loggers)
    if study is not None:
        markdown += study["markdown"]
    atomic_write_text(root / "report.md", markdown)
    figures = [p for x in AXES for m in PLOTTED if (p := plot(rows, references, m, root, loggers, x=x)) is not None]
    figures += [p for m in ("gen_ppl", "unigram_entropy")
                if (p := plot_against_noise(rows, references, m, root, loggers)) is not None]
    figures += [p for p in (plot_frontier(rows, references, root, loggers),) if p is not None]
    figures += study["figures"] if study is not None else []
    return {"rows": rows, "references": references, "csv": root / "report.csv", "markdown": root / "report.md",
            "figures": figures, "study": study}


try:  # Hydra callback: aggregate at the end of a multirun
    from hydra.experimental.callback import Callback as _HydraCallback
except ImportError:  # pragma: no cover
    _HydraCallback = object


class ReportCallback(_HydraCallback):
    """Writes report.csv / report.md / plots into the sweep folder when ``sample.py -m`` ends."""

    def on_multirun_start(self, config, **kwargs) -> None:
        """The sweep folder exists before the sweeper starts: a study's SQLite file lives in it
        (``hydra/sweeper=sampler_study``; Hydra makes it only when the first point launches)."""
        Path(config.hydra.sweep.dir).mkdir(parents=True, exist_ok=True)

    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if any(sweep_dir.rglob("metrics.json")):
            from textflow.dashboards.sweep import publish_sweep_report

            result = build_report(sweep_dir)
            publish_sweep_report(config.get("logger"), sweep_dir=sweep_dir, report_csv=result["csv"],
                                 figures=result["figures"])  # the sweep_report run in the points' group
            print(f"[textflow] sweep report: {result['markdown']}")
            print(result["markdown"].read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m textflow.sampling.report", description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="a sample.py run folder or multirun sweep folder")
    args = parser.parse_args(argv)
    result = build_report(args.folder)
    print(result["markdown"].read_text())
    print(f"wrote {result['csv']}, {result['markdown']} and {len(result['figures'])} figure(s)", file=sys.stderr)


if __name__ == "__main__":
    main()
