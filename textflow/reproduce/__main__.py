"""``python -m textflow.reproduce [--budget fast|full] [--out DIR]``: train, sample, diagnose and
write the report of arXiv 2606.30705's claims (docs/reproduce.md). Rerun the same command to resume."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from textflow.errors import TextflowError
from textflow.reproduce.budgets import BUDGETS
from textflow.reproduce.claims import evaluate_claims
from textflow.reproduce.report import write_report
from textflow.reproduce.runner import check_commands, read_status, run_plan
from textflow.reproduce.stages import plan


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m textflow.reproduce", description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="fast", help=f"one of: {', '.join(BUDGETS)} (default fast)")
    parser.add_argument("--out", default=None, help="output folder (default outputs/reproduce/<budget>)")
    parser.add_argument("--only", nargs="+", default=(), metavar="STAGE",
                        help="run only these stages (and what they need); the report covers what exists")
    parser.add_argument("--report-only", action="store_true", help="write the report from the outputs that exist")
    parser.add_argument("--list", action="store_true", help="print every stage's command and exit")
    args = parser.parse_args(argv)
    try:
        if args.budget not in BUDGETS:
            raise TextflowError(f"--budget {args.budget!r} is not valid; choose one of: {', '.join(BUDGETS)}")
        budget = BUDGETS[args.budget]
        out = Path(args.out or Path("outputs") / "reproduce" / budget.name).absolute()
        stages = plan(budget, out)
        if args.list:
            for stage in stages:
                print(f"{stage.name:<12} {stage.shell()}")
            return
        out.mkdir(parents=True, exist_ok=True)
        if not args.report_only:
            check_commands(stages)
        status = read_status(out) if args.report_only else run_plan(stages, out, only=args.only)
        report = write_report(out, budget=budget, stages=stages, claims=evaluate_claims(out), status=status)
    except TextflowError as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        sys.exit(2)
    print(report.read_text())
    print(f"[reproduce] wrote {report}")


if __name__ == "__main__":
    main()
