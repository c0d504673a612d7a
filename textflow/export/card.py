"""The model card (README.md) of an exported folder: what the model is, how it was trained, what was
measured (docs/reliability.md, "Exported models"). Every number comes from a file: the checkpoint's run
info, the run's ``train_metrics.json`` when it sits next to the checkpoint, and a sweep's
``report.csv`` when one is given."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from omegaconf import OmegaConf

SWEEP_COLUMNS = ("sampler", "steps", "gamma", "gen_ppl", "gen_ppl_ci95", "unigram_entropy", "mode_collapse",
                 "tokens_per_s")


def _target(section) -> str:
    return str(section.get("_target_", "?")).rsplit(".", 1)[-1] if section is not None else "?"


def model_card(ckpt: dict, *, source: str, train_metrics: Path | None = None, report: Path | None = None) -> str:
    info = ckpt["textflow"]
    cfg = OmegaConf.create(info["config"]) if info.get("config") else OmegaConf.create({})
    net = sum(t.numel() for name, t in ckpt["state_dict"].items() if name.startswith("net."))
    ae, bb, data = cfg.get("autoencoder"), cfg.get("backbone"), cfg.get("data")
    lines = ["# textflow model", "",
             f"Exported from `{source}` by `python -m textflow.export`. A continuous text-diffusion model "
             "(a flow over per-token latents, arXiv 2606.30705) trained with textflow.", "",
             "## What it is", "",
             f"- kind: `{info.get('kind', 'flow')}`, checkpoint format {info.get('format')}",
             f"- autoencoder: `{_target(ae)}` (latent dim {ae.get('latent_dim') if ae is not None else '?'})",
             f"- backbone: `{_target(bb)}` (width {bb.get('width') if bb is not None else '?'}, depth "
             f"{bb.get('depth') if bb is not None else '?'}, heads {bb.get('heads') if bb is not None else '?'})",
             f"- trained network: {net:,} parameters; vocabulary {info.get('vocab_size')}, blocks of "
             f"{info.get('seq_len')} tokens"]
    students = sorted(info.get("students") or {}, key=int)
    if students:
        lines.append(f"- distilled students for K = {', '.join(students)} (`sampler=student sampler.steps=K`)")
    if info.get("flow_map"):
        lines.append("- a flow-map student for any K (`sampler=flow_map sampler.steps=K`)")
    if data is not None:
        lines += ["", "## How it was trained", "",
                  f"- data: `{_target(data.get('corpus'))}` with tokenizer `{_target(data.get('tokenizer'))}`, "
                  f"batch {data.get('batch_size')} x {data.get('seq_len')} tokens"]
    if train_metrics is not None and train_metrics.is_file():
        metrics = json.loads(train_metrics.read_text())
        shown = {k: v for k, v in sorted(metrics.items()) if isinstance(v, (int, float)) and
                 not isinstance(v, bool) and (k.startswith(("val/", "train/", "diag/")) or k == "global_step")}
        if shown:
            lines += ["", f"## Measured at the end of training (`{train_metrics.name}`)", "",
                      "| metric | value |", "|---|---|"]
            lines += [f"| `{k}` | {v:.4g} |" for k, v in shown.items()]
    if report is not None:
        with open(report) as fh:
            rows = list(csv.DictReader(fh))
        lines += ["", f"## Sampler table (`{report}`)", "",
                  "| " + " | ".join(SWEEP_COLUMNS) + " |", "|" + "---|" * len(SWEEP_COLUMNS)]
        for row in rows:
            cells = []
            for c in SWEEP_COLUMNS:
                value = row.get(c, "")
                try:
                    value = f"{float(value):.4g}" if c not in ("steps", "gen_ppl_ci95") and value else value
                except ValueError:
                    pass
                cells.append(value)
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Use", "", "```bash", "python sample.py ckpt_path=THIS_FOLDER sampler=sde sampler.gamma=1.0 "
              "sampler.steps=8", "python -m textflow.diagnostics THIS_FOLDER", "```", "", "```python",
              "import textflow", "model = textflow.load_pretrained(\"THIS_FOLDER\")",
              "print(model.sample(4, sampler=\"ode\", steps=8))", "```", "",
              "The folder holds no pickle: `model.safetensors` (tensors), `textflow.json` (plain-data run "
              "info; its config may only name textflow, torch and lightning targets), `tokenizer.json`.", ""]
    return "\n".join(lines)
