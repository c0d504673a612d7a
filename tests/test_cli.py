"""The CLI contract as a user meets it: bad input gives one line naming the value, exit status != 0."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT


def run_cli(*args: str, cwd=ROOT, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "WANDB_MODE": "offline"}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode != 0
    err = proc.stderr.strip()
    assert "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, cache_dir):
    """A checkpoint made through the real train.py command line."""
    out = tmp_path_factory.mktemp("cli-train")
    proc = run_cli("train.py", "debug=fast", "data=fixture", "trainer.max_steps=4", "logger=none",
                   "callbacks=none", f"dirs.cache_dir={cache_dir}", f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"checkpoint: {out}/checkpoints/final.ckpt" in proc.stdout
    return out / "checkpoints" / "final.ckpt"


def test_sample_cli_writes_outputs(ckpt, tmp_path):
    proc = run_cli("sample.py", f"ckpt_path={ckpt}", "sampler=sde", "sampler.steps=4", "sampler.gamma=1.5",
                   "num_samples=2", "seed=0", "evaluation=diversity", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "samples.jsonl").is_file() and (tmp_path / "metrics.json").is_file()
    assert "heldout" in proc.stdout and "shuffled" in proc.stdout and str(tmp_path / "metrics.json") in proc.stdout


def test_sample_multirun_gives_each_run_a_folder_and_one_report(ckpt, tmp_path):
    proc = run_cli("sample.py", "-m", f"ckpt_path={ckpt}", "sampler=ode,sde,student", "sampler.steps=1,2",
                   "num_samples=2", "evaluation=diversity",
                   f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list(tmp_path.glob("*/metrics.json"))) == 4
    # this checkpoint has no distilled students: those two points fail alone, with their reason recorded
    assert len(list(tmp_path.glob("*/error.json"))) == 2 and "no student was distilled" in proc.stderr
    report = (tmp_path / "report.md").read_text()
    assert report.count("| ode |") == 2 and report.count("| sde |") == 2 and (tmp_path / "report.csv").is_file()
    assert report.count("| heldout text |") == 1 and report.count("| shuffled text |") == 1


@pytest.mark.parametrize("args,needles", [
    (["sampler=nope"], ["nope", "ode", "sde"]),
    (["sampler=sde", "sampler.gamma=-1"], ["sampler.gamma=-1", ">= 0"]),
    (["sampler.steps=0"], ["sampler.steps=0", ">= 1"]),
    (["ckpt_path=/no/such/file.ckpt"], ["ckpt_path='/no/such/file.ckpt' does not exist"]),
])
def test_bad_sampling_input(args, needles, tmp_path):
    proc = run_cli("sample.py", *(["ckpt_path=/no/such/file.ckpt"] if not any(a.startswith("ckpt_path") for a in args)
                                  else []), *args, f"hydra.run.dir={tmp_path}")
    assert_one_line_error(proc, *needles)


def test_corrupt_checkpoint(tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"\x00garbage")
    proc = run_cli("sample.py", f"ckpt_path={bad}", f"hydra.run.dir={tmp_path}")
    assert_one_line_error(proc, "is not a readable checkpoint")


def test_empty_corpus(tmp_path, cache_dir):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "a.txt").write_text("   \n")
    (tmp_path / "empty" / "b.txt").write_text("")
    proc = run_cli("train.py", "debug=fast", "data=local", f"data.corpus.train_glob={tmp_path}/empty/*.txt",
                   f"dirs.cache_dir={cache_dir}", f"hydra.run.dir={tmp_path}/run")
    assert_one_line_error(proc, "empty")


@pytest.mark.parametrize("script,override,needle", [
    ("sample.py", "ckpt_path=/nonexistent.ckpt", "ckpt_path='/nonexistent.ckpt' does not exist"),
    ("train.py", "autoencoder=nope", "autoencoder='nope' is not valid")])
def test_a_bad_command_line_is_answered_without_importing_lightning(script, override, needle):
    """Lightning costs seconds to import: the entry points check their command line (sample.py also its
    checkpoint path and output-folder lock) before it is loaded."""
    code = ("import atexit, runpy, sys; atexit.register(lambda: print('lightning loaded:', 'lightning' in sys.modules)); "
            f"sys.argv = ['{script}', '{override}']; runpy.run_path('{script}', run_name='__main__')")
    proc = run_cli("-c", code)
    assert proc.returncode == 2 and needle in proc.stderr, proc.stderr
    assert "lightning loaded: False" in proc.stdout


def test_global_rank_reads_the_launcher_environment_in_lightnings_order():
    """Without Lightning loaded, global_rank reads RANK, LOCAL_RANK, SLURM_PROCID, JSM_NAMESPACE_RANK in
    that order (lightning.fabric's _get_rank), so the run-folder lock is taken by rank 0 alone."""
    code = ("import os, sys; from textflow.runs.lock import RANK_VARIABLES, global_rank\n"
            "cases = [{}, {'RANK': '3'}, {'LOCAL_RANK': '1', 'SLURM_PROCID': '5'}, {'SLURM_PROCID': '5'},\n"
            "         {'JSM_NAMESPACE_RANK': '2'}]\n"
            "for case in cases:\n"
            "    [os.environ.pop(k, None) for k in RANK_VARIABLES]; os.environ.update(case); print(global_rank())\n"
            "print('lightning' in sys.modules)")
    proc = run_cli("-c", code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0", "3", "1", "5", "2", "False"]
