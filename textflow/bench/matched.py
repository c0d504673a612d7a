"""Speed at matched quality: how much faster than its AR twin a flow sampler is at the twin's quality
(docs/benchmarks.md, "Speed at matched quality").

Quality comes from finished sampler sweeps (``python sample.py -m ...``, one of them with ``ar_twin=TWIN``):
their ``report.csv`` files hold every point's judge gen-PPL with its 95 % interval, the mode-collapse flag and
the AR twin's and held-out text's reference rows. For each sampler family the benchmark picks the smallest K
whose gen-PPL is at or below the upper end of the twin's interval, without mode collapse and with a unigram
entropy within ``entropy_tolerance`` (0.3 nats) of held-out text's (**matched**: a gen-PPL bought by low
entropy is not the twin's quality); a family that never gets there is represented by its best point inside the
band (**best**, not matched), else its best non-collapsed point (**best (outside the entropy band)**), else
its best point (**best (collapsed)**). Speed is then re-timed side by side, not read from the sweep: the
picked sampler (rebuilt from the point's ``metrics.json`` and its time grid's knobs) on the sweep's flow
checkpoint, and the twin's ancestral sampling, both at the same batch and length on this machine.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch

from textflow.bench.runner import time_round_robin
from textflow.errors import ConfigError
from textflow.kernels.linear import reuse_packed_weights

TWIN_ROW = "ar_twin text"


def _interval(text: str) -> tuple[float, float]:
    low, high = (float(v) for v in text.strip("[]").split(","))
    return low, high


def read_reports(paths: list[str | Path]) -> tuple[list[dict], dict]:
    """(sampler rows of every report, each with its ``report_dir``; the AR twin's row) of sweep
    ``report.csv`` files; the twin's row comes from the first report that has one, and every report that
    has one must name the same twin."""
    rows, twin = [], None
    for path in map(Path, paths):
        if not path.is_file():
            raise ConfigError(f"--report {str(path)!r} does not exist; pass the report.csv of a finished "
                              "sample.py -m sweep (one of them run with ar_twin=TWIN)")
        with path.open() as fh:
            for row in csv.DictReader(fh):
                if row["sampler"] == TWIN_ROW and row.get("gen_ppl_ci95"):
                    if twin is not None and row["ckpt_path"] != twin["ckpt_path"]:
                        raise ConfigError(f"--report {str(path)!r} names AR twin {row['ckpt_path']!r} but an "
                                          f"earlier report names {twin['ckpt_path']!r}; compare one twin at a time")
                    twin = twin or row
                elif row["sampler"] and not row["sampler"].endswith(" text") and row.get("gen_ppl"):
                    rows.append({**row, "report_dir": str(path.parent)})
    if twin is None:
        raise ConfigError("no --report has an AR-twin row with a gen-PPL interval; run one sweep with "
                          "ar_twin=TWIN (python train.py experiment=ar_twin makes one)")
    if not rows:
        raise ConfigError("no --report has sampler rows with a judge gen-PPL")
    return rows, twin


def heldout_entropy(paths: list[str | Path]) -> float | None:
    """The held-out text's unigram entropy, from the first report whose ``heldout text`` row has one."""
    for path in map(Path, paths):
        with path.open() as fh:
            for row in csv.DictReader(fh):
                if row["sampler"] == "heldout text" and row.get("unigram_entropy"):
                    return float(row["unigram_entropy"])
    return None


def pick(rows: list[dict], twin_high: float, *, entropy_band: tuple[float, float] | None = None) -> list[dict]:
    """Per sampler family, the smallest K with gen-PPL <= ``twin_high``, no mode collapse and unigram entropy
    inside ``entropy_band`` (matched), or the family's best such point, else its best non-collapsed point,
    else its best point. The band keeps a low gen-PPL bought by low entropy from counting as quality."""
    def in_band(r):
        return entropy_band is None or entropy_band[0] <= float(r["unigram_entropy"]) <= entropy_band[1]

    picks = []
    for family in sorted({r["sampler"] for r in rows}):
        points = sorted((r for r in rows if r["sampler"] == family),
                        key=lambda r: (int(r["steps"]), float(r["gen_ppl"])))
        uncollapsed = [r for r in points if r.get("mode_collapse") != "True"]
        healthy = [r for r in uncollapsed if in_band(r)]
        matched = [r for r in healthy if float(r["gen_ppl"]) <= twin_high]
        if matched:
            choice, status = matched[0], "matched"
        else:
            pool, status = next((pool, status) for pool, status in (
                (healthy, "best"), (uncollapsed, "best (outside the entropy band)"), (points, "best (collapsed)"))
                if pool)
            choice = min(pool, key=lambda r: float(r["gen_ppl"]))
        picks.append({**choice, "status": status})
    return picks


def _time_of(point: Path, name: str):
    """The point's time grid: the class its metrics.json names, with the knobs its ``.hydra/config.yaml``
    gave ``sampler.time`` (read as plain YAML data; only textflow's own grids are built). Knobs left null
    (``time=flm``) are read from the model when the sampler meets it (``Sampler.denoiser``)."""
    import yaml

    from textflow import time as grids

    known = {cls: getattr(grids, cls) for cls in ("UniformTime", "LogitNormalTime", "ArgmaxAccuracyTime")}
    if name not in known:
        raise ConfigError(f"point {point.name!r} used the time grid {name!r}; this benchmark rebuilds "
                          f"{', '.join(known)}")
    config = point / ".hydra" / "config.yaml"
    node = (yaml.safe_load(config.read_text()) or {}).get("sampler", {}).get("time") if config.is_file() else None
    knobs = {k: v for k, v in (node or {}).items() if k != "_target_"}
    if name != "UniformTime" and node is None:
        raise ConfigError(f"point {point.name!r} used {name} but has no .hydra/config.yaml with its knobs")
    return known[name](**knobs)


def _sampler_of(row: dict):
    from textflow.samplers import Sampler
    from textflow.samplers.spec import recorded_knobs

    point = Path(row["report_dir"]) / row["run"]
    name, knobs = recorded_knobs(json.loads((point / "metrics.json").read_text())["sampler"])
    return Sampler(name=name, time=_time_of(point, knobs.pop("time", "UniformTime")), **knobs)


def run(*, reports: list[str], batch_size: int = 32, repeats: int = 3, entropy_tolerance: float = 0.3,
        device: str = "cpu") -> list[dict]:
    """``device``: where both models sample (``cpu``, ``cuda``, ``cuda:N``, ``auto``). The twin's per-sample
    generators live there too, so its ancestral draws stay on the device."""
    from textflow.checkpoint import load_run
    from textflow.cli import pick_device
    from textflow.noise import per_sample_generators
    from textflow.sampling.ar_twin import load_twin
    from textflow.sampling.generate import generate

    rows, twin_row = read_reports(reports)
    twin_low, twin_high = _interval(twin_row["gen_ppl_ci95"])
    heldout = heldout_entropy(reports)
    band = None if heldout is None else (heldout - entropy_tolerance, heldout + entropy_tolerance)
    picks = pick(rows, twin_high, entropy_band=band)
    dev = pick_device(device)
    runs = {path: load_run(path) for path in dict.fromkeys(p["ckpt_path"] for p in picks)}
    for loaded_run in runs.values():
        loaded_run.module.to(dev)
    loaded = runs[picks[0]["ckpt_path"]]
    seq_len = int(loaded.info["seq_len"])
    twin, bos_id, _ = load_twin(twin_row["ckpt_path"], flow_info=loaded.info)
    twin.to(dev)

    def twin_once():
        generators = per_sample_generators(0, range(batch_size), device=dev)
        return twin.sample(batch_size, seq_len, bos_id=bos_id, generators=generators)

    def flow_once(choice: dict):
        sampler = _sampler_of(choice)
        den = sampler.denoiser(runs[choice["ckpt_path"]], use_ema=True)
        return lambda: generate(den, sampler, num_samples=batch_size, seq_len=seq_len, seed=0,
                                batch_size=batch_size, device=dev)

    # steady state for both models (weights reordered for oneDNN once, textflow.kernels.linear), timed in
    # rounds of one batch each, so a shared host slowing down mid-run reaches the twin and every pick alike
    calls = {"twin": twin_once, **{f"pick {index}": flow_once(choice) for index, choice in enumerate(picks)}}
    with torch.no_grad(), reuse_packed_weights():
        timings = time_round_robin(calls, warmup=1, repeats=repeats, desc="AR twin and picks")
    twin_s = timings["twin"]["median_s"]
    out = []
    for index, choice in enumerate(picks):
        sampler, flow_s = _sampler_of(choice), timings[f"pick {index}"]["median_s"]
        low, high = _interval(choice["gen_ppl_ci95"])
        out.append({"family": choice["sampler"], "K": int(choice["steps"]), "label": sampler.label,
                    "status": choice["status"], "gen_ppl": float(choice["gen_ppl"]), "gen_ppl_low": low,
                    "gen_ppl_high": high, "unigram_entropy": float(choice["unigram_entropy"]),
                    "twin_gen_ppl": float(twin_row["gen_ppl"]), "twin_low": twin_low, "twin_high": twin_high,
                    "batch": batch_size, "seq_len": seq_len, "device": str(dev),
                    "tokens_per_s": batch_size * seq_len / flow_s,
                    "twin_tokens_per_s": batch_size * seq_len / twin_s, "speedup": twin_s / flow_s})
    return out


def plot(rows: list[dict], path: str | Path) -> Path:
    """Speed against quality: each family's pick (gen-PPL with its 95 % interval, tokens/s) beside the twin
    (its interval shaded), so a matched point reads as one that sits inside the band and above the twin."""
    from textflow.plots import finish, new_axes

    fig, ax = new_axes()
    twin = rows[0]
    ax.axvspan(twin["twin_low"], twin["twin_high"], color="tab:gray", alpha=0.2, label="AR twin's 95 % interval")
    ax.plot([twin["twin_gen_ppl"]], [twin["twin_tokens_per_s"]], "k*", markersize=12, label="AR twin")
    for row in rows:
        ax.errorbar([row["gen_ppl"]], [row["tokens_per_s"]], capsize=3, fmt="o",
                    xerr=[[row["gen_ppl"] - row["gen_ppl_low"]], [row["gen_ppl_high"] - row["gen_ppl"]]],
                    label=f"{row['family']} K = {row['K']} ({row['status']})")
    ax.set_xscale("log")
    ax.set_xlabel("judge gen-PPL (lower is better)")
    ax.set_ylabel(f"tokens/s (batch {twin['batch']} x {twin['seq_len']}, {twin.get('device', 'cpu')})")
    ax.set_title("speed at matched quality: each family's pick against the AR twin", fontsize=9)
    return finish(fig, ax, path)
