"""``python -m textflow.diagnostics CKPT``: the readout diagnostics of a checkpoint, written as
``diagnostics.json``, ``diagnostics.md`` and figures (docs/diagnostics.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from textflow.diagnostics.report import diagnose
from textflow.io import atomic_write_json, atomic_write_text


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m textflow.diagnostics", description=__doc__.splitlines()[0])
    parser.add_argument("ckpt")
    parser.add_argument("--out", default=None, help="folder for the report (default: next to the checkpoint)")
    parser.add_argument("--blocks", type=int, default=64)
    parser.add_argument("--steps", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--logger", default=None, help="also send the report to a dashboard: a conf/logger option "
                        "(csv, tensorboard, wandb, many), written under --out (docs/dashboards.md)")
    args = parser.parse_args(argv)
    out_dir = Path(args.out or Path(args.ckpt).parent.parent / "diagnostics")
    out_dir.mkdir(parents=True, exist_ok=True)
    result = diagnose(args.ckpt, blocks=args.blocks, steps=tuple(args.steps), seed=args.seed)
    atomic_write_json(out_dir / "diagnostics.json", result.as_dict())
    atomic_write_text(out_dir / "diagnostics.md", result.markdown())
    written = result.figures(out_dir)
    print(result.markdown())
    print(f"[textflow] wrote {out_dir}/diagnostics.md, diagnostics.json, " + ", ".join(p.name for p in written))
    if args.logger:
        from textflow.dashboards.diagnostics import publish_diagnostics

        publish_diagnostics(args.logger, out_dir=out_dir, result=result.as_dict(), figures=written,
                            params={"ckpt": str(args.ckpt), "blocks": args.blocks, "steps": list(args.steps),
                                    "seed": args.seed})
