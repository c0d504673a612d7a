"""Sweeps on Hydra's own launchers (docs/samplers.md, "Sweeps on launchers"): the same two-point sweep under
joblib (parallel points, worker processes) and submitit_local (real submitit jobs) leaves each point its
folder, a failed point its error.json, and the sweep its report, written by the main process."""

from __future__ import annotations

import json

import pytest

from test_cli import ckpt, run_cli  # noqa: F401 - the CLI-trained checkpoint fixture


@pytest.mark.parametrize("launcher", [
    ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    pytest.param(["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"], marks=pytest.mark.slow),
], ids=["joblib", "submitit_local"])
def test_a_two_point_sweep_on_a_launcher_writes_points_errors_and_the_report(ckpt, tmp_path, launcher):  # noqa: F811
    proc = run_cli("sample.py", "-m", f"ckpt_path={ckpt}", "sampler=ode,student", "sampler.steps=2", "num_samples=2",
                   "evaluation=diversity", f"hydra.sweep.dir={tmp_path}", *launcher,
                   env_extra={"OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list(tmp_path.glob("*/metrics.json"))) == 1  # ode
    errors = list(tmp_path.glob("*/error.json"))  # student: this checkpoint has no distilled student
    assert len(errors) == 1 and "no student was distilled" in json.loads(errors[0].read_text())["error"]
    report = (tmp_path / "report.md").read_text()
    assert report.count("| ode |") == 1 and "| heldout text |" in report and (tmp_path / "report.csv").is_file()
