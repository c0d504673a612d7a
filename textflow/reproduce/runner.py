"""Run the reproduce plan stage by stage; a finished stage is skipped, so an interrupted run resumes
(a training stage also resumes inside itself from its ``last.ckpt``: docs/reliability.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from textflow.errors import TextflowError
from textflow.io import atomic_write_json
from textflow.reproduce.stages import Stage

STATUS = "stages.json"


class StageFailed(TextflowError):
    """A stage's command exited non-zero or left no finished-marker."""


def repository_root() -> Path:
    """The folder holding ``train.py`` and ``sample.py`` (the stages' commands run there)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "train.py").is_file() or not (root / "sample.py").is_file():
        raise TextflowError(f"python -m textflow.reproduce needs the repository checkout (train.py, sample.py); "
                            f"none at {root}: install textflow with pip install -e . from a clone")
    return root


def check_commands(stages: Sequence[Stage], root: Path | None = None) -> None:
    """Refuse a bad override of any ``train.py`` / ``sample.py`` stage before the first stage runs
    (the entry points' own pre-flight: :mod:`textflow.cli.preflight`), naming the stage."""
    from textflow.cli.preflight import check_command_line
    from textflow.errors import ConfigError

    conf = (root or repository_root()) / "conf"
    for stage in stages:
        script = stage.argv[0]
        if script in ("train.py", "sample.py"):
            try:
                check_command_line(conf, script.removesuffix(".py"), list(stage.argv[1:]))
            except ConfigError as err:
                raise ConfigError(f"stage {stage.name}: {err}") from None


def read_status(out: Path) -> dict:
    path = out / STATUS
    return json.loads(path.read_text()) if path.is_file() else {}


def run_plan(stages: Sequence[Stage], out: Path, *, python: str = sys.executable, cwd: Path | None = None,
             only: Sequence[str] = (), say: Callable[[str], None] = print) -> dict:
    """Run every unfinished stage (or those named in ``only`` and what they need) in order.

    Each stage's output goes to ``out/logs/<stage>.log``; wall times and exit codes to
    ``out/stages.json`` (atomic). Returns that status. Raises :class:`StageFailed` on the first
    stage that fails, naming its log, after recording it.
    """
    from tqdm.auto import tqdm

    out = Path(out)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    cwd = cwd or repository_root()
    by_name = {s.name: s for s in stages}
    wanted = _closure(only, by_name) if only else [s.name for s in stages]
    status = read_status(out)
    bar = tqdm([s for s in stages if s.name in wanted], desc="reproduce", unit="stage")
    for stage in bar:
        bar.set_postfix_str(stage.name)
        if stage.finished(out):
            status.setdefault(stage.name, {})["state"] = "done"
            continue
        missing = [n for n in stage.needs if not by_name[n].finished(out)]
        if missing:
            raise StageFailed(f"stage {stage.name} needs {', '.join(missing)}, which did not finish; "
                              f"run without --only, or with --only {' '.join(missing)} first")
        log = out / "logs" / f"{stage.name}.log"
        say(f"[reproduce] {stage.name}: {stage.shell()}")
        start = time.monotonic()
        with open(log, "w") as handle:
            code = subprocess.run([python, *stage.argv], cwd=cwd, stdout=handle, stderr=subprocess.STDOUT,
                                  env=_environment()).returncode
        wall = time.monotonic() - start
        ok = code == 0 and stage.finished(out)
        status[stage.name] = {"state": "done" if ok else "failed", "exit_code": code, "wall_s": round(wall, 1),
                              "command": stage.shell()}
        atomic_write_json(out / STATUS, status)
        if not ok:
            why = f"exited with {code}" if code else f"left no {stage.done}"
            raise StageFailed(f"stage {stage.name} {why}; its log is {log}; rerun the same command to resume "
                              "from there (finished stages are skipped)")
        say(f"[reproduce] {stage.name} done in {wall:.0f} s")
    atomic_write_json(out / STATUS, status)
    return status


def _closure(only: Sequence[str], by_name: dict[str, Stage]) -> list[str]:
    unknown = [n for n in only if n not in by_name]
    if unknown:
        raise TextflowError(f"--only {' '.join(unknown)}: no such stage; stages: {', '.join(by_name)}")
    wanted, todo = set(), list(only)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo.extend(by_name[name].needs)
    return [n for n in by_name if n in wanted]


def _environment() -> dict:
    """The caller's environment; wandb stays offline unless the caller chose otherwise."""
    env = dict(os.environ)
    env.setdefault("WANDB_MODE", "offline")
    return env
