"""``python -m textflow.export CKPT OUT_DIR [--report SWEEP/report.csv]``: a checkpoint as safetensors +
JSON + tokenizer + model card (docs/reliability.md, "Exported models")."""

from __future__ import annotations

import argparse
import sys

from textflow.cli import guarded


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m textflow.export", description=__doc__.splitlines()[0])
    parser.add_argument("ckpt", help="a textflow .ckpt (final.ckpt, distilled.ckpt)")
    parser.add_argument("out_dir", help="a new (or empty) folder")
    parser.add_argument("--report", help="a sweep's report.csv: its sampler table goes into the model card")
    args = parser.parse_args(argv)
    from textflow.export import export_checkpoint

    out = export_checkpoint(args.ckpt, args.out_dir, report=args.report)
    print(f"[textflow] exported {args.ckpt} -> {out} (model.safetensors, textflow.json, tokenizer.json, README.md)",
          file=sys.stderr)


if __name__ == "__main__":
    guarded(main, None)
