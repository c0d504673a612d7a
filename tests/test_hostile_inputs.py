"""textflow tried as a hostile or careless user would (docs/reliability.md): no silent NaN, protected run
folders, one line for every bad value. Every row asserts exit status 2, exactly one ``error:`` line
naming the bad value, and that nothing was lost. Hostile checkpoints: tests/test_hostile_checkpoints.py.
"""

from __future__ import annotations

import csv
import json
import os
import stat

import pytest
import torch

import sample as sample_entry
import train as train_entry
from textflow.checkpoint import read_checkpoint
from textflow.cli import guarded
from textflow.cli.preflight import check_command_line
from textflow.errors import ConfigError
from textflow.io import atomic_write_json, atomic_write_jsonl
from textflow.runs.lock import LOCK_NAME, RunFolderLock
from hostile import CONF, expect_exit_2, hostile_copy, payload, sample_cfg, tiny_train, trained  # noqa: F401


# ------------------------------------------------------------------------------------------------ 2. no silent NaN
def test_a_diverging_run_stops_in_one_line_and_writes_no_nonfinite_checkpoint(tmp_path, cache_dir, capsys):
    out = tmp_path / "nan"
    cfg = tiny_train(out, cache_dir, "module.optimizer.lr=1e6", "trainer.max_steps=30",
                     "callbacks.model_checkpoint.every_n_train_steps=1")
    line = expect_exit_2(capsys, lambda: guarded(train_entry.run, cfg))
    assert "training diverged at step" in line and ("last finite checkpoint" in line or "no checkpoint" in line)
    for ckpt in (out / "checkpoints").glob("*.ckpt"):
        read_checkpoint(ckpt)  # every checkpoint on disk is finite (read_checkpoint refuses NaN weights)
    assert not (out / "checkpoints" / "final.ckpt").exists()


def test_sampling_refuses_nonfinite_weights(trained, tmp_path, capsys):
    ckpt = torch.load(trained["ckpt"], map_location="cpu", weights_only=True)
    name = next(k for k, v in ckpt["state_dict"].items() if v.is_floating_point())
    ckpt["state_dict"][name] = ckpt["state_dict"][name].clone().fill_(float("nan"))
    bad = tmp_path / "nan.ckpt"
    torch.save(ckpt, bad)
    line = expect_exit_2(capsys, lambda: guarded(sample_entry.run, sample_cfg(bad, tmp_path / "s")))
    assert "non-finite weights" in line and name in line
    assert not (tmp_path / "s" / "samples.jsonl").exists()


def test_json_outputs_never_hold_nan_or_infinity(tmp_path):
    atomic_write_json(tmp_path / "m.json", {"a": float("nan"), "b": [float("inf"), 1.5], "c": {"d": -float("inf")}})
    atomic_write_jsonl(tmp_path / "r.jsonl", [{"x": float("nan")}])
    text = (tmp_path / "m.json").read_text() + (tmp_path / "r.jsonl").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": None, "b": [None, 1.5], "c": {"d": None}}


# ------------------------------------------------------------------------------------------------ 3. run folders
def test_a_held_run_folder_refuses_a_second_run(trained, tmp_path, cache_dir, capsys):
    folder = tmp_path / "held"
    with RunFolderLock(folder):
        line = expect_exit_2(capsys, lambda: guarded(sample_entry.run, sample_cfg(trained["ckpt"], folder)))
        assert "is in use by a live run" in line and f"pid {os.getpid()}" in line
        line = expect_exit_2(capsys, lambda: guarded(train_entry.run, tiny_train(folder, cache_dir)))
        assert "is in use by a live run" in line
        with pytest.raises(ConfigError, match="in use by a live run"):
            check_command_line(CONF, "sample", [f"ckpt_path={trained['ckpt']}", f"hydra.run.dir={folder}"])
    assert not (folder / "samples.jsonl").exists() and not (folder / "checkpoints").exists()


def test_a_stale_lock_is_taken_over_with_a_notice(trained, tmp_path, capsys):
    folder = tmp_path / "stale"
    folder.mkdir()
    (folder / LOCK_NAME).write_text(json.dumps({"pid": 2**22 + 7, "host": "gone", "started": "earlier"}))
    sample_entry.run(sample_cfg(trained["ckpt"], folder))
    assert "taking over the stale lock" in capsys.readouterr().err
    assert (folder / "samples.jsonl").is_file() and not (folder / LOCK_NAME).exists()


def test_sampling_outputs_are_one_unit_with_normal_permissions(trained, tmp_path):
    old = os.umask(0o022)
    try:
        sample_entry.run(sample_cfg(trained["ckpt"], tmp_path))
    finally:
        os.umask(old)
    rows = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert {r["run_id"] for r in rows} == {metrics["run_id"]}
    for name in ("samples.jsonl", "metrics.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name


def test_a_folder_broken_mid_run_loses_no_sample(trained, tmp_path, monkeypatch, capsys):
    folder, rescue = tmp_path / "vanishing", tmp_path / "rescue"
    monkeypatch.setenv("TEXTFLOW_RESCUE_DIR", str(rescue))
    from textflow.sampling import run as sampling_run

    real_generate = sampling_run.generate

    def generate_then_break_folder(*args, **kwargs):
        result = real_generate(*args, **kwargs)
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()
        folder.write_text("the run folder was replaced by a file")
        return result

    monkeypatch.setattr(sampling_run, "generate", generate_then_break_folder)
    line = expect_exit_2(capsys, lambda: guarded(sample_entry.run, sample_cfg(trained["ckpt"], folder)))
    assert "they were saved to" in line
    saved = next(rescue.iterdir())
    rows = (saved / "samples.jsonl").read_text().splitlines()
    assert len(rows) == 2 and json.loads((saved / "metrics.json").read_text())["run_id"] == saved.name


def test_resume_appends_to_the_metrics_log(tmp_path, cache_dir):
    out = tmp_path / "resume"
    base = ["callbacks.samples.every_n_validations=0", "callbacks.diagnostics.every_n_validations=0",
            "callbacks.model_checkpoint.every_n_train_steps=4"]
    train_entry.run(tiny_train(out, cache_dir, "trainer.max_steps=4", *base))
    read = lambda: list(csv.DictReader((out / "csv" / "metrics.csv").open()))  # noqa: E731
    before = read()
    train_entry.run(tiny_train(out, cache_dir, "trainer.max_steps=8", *base))
    after = read()
    assert len(after) > len(before) and max(int(r["step"]) for r in after) > max(int(r["step"]) for r in before)
    kept = [{k: r[k] for k in before[0]} for r in after]
    assert all(row in kept for row in before)  # every row logged before the resume survives it


# ------------------------------------------------------------------------------------------------ 5. one line per bad value
PREFLIGHT_CASES = [  # (config, argv, words the one line must contain)
    ("sample", ["ckpt_path=x", "sampler=nope"], ["sampler='nope'", "ode", "sde", "commit"]),
    ("sample", ["-m", "ckpt_path=x", "sampler=ode,nope"], ["sampler='nope'", "choose one of"]),
    ("sample", ["ckpt_path=x", "nonsense=1"], ["nonsense", "not a key"]),
    ("sample", ["ckpt_path=x", "sampler.stepz=4"], ["sampler.stepz", "sampler.steps"]),
    ("sample", ["ckpt_path=x", "+foo=bar"], ["+foo=bar", "does not read"]),
    ("train", ["+module.foo=1"], ["+module.foo=1", "does not read"]),
    ("sample", ["ckpt_path=x", "seed=1.5"], ["seed=1.5", "integer"]),
    ("sample", ["ckpt_path=x", "seed=abc"], ["seed='abc'", "integer"]),
    ("train", ["data.seq_len=1.5"], ["data.seq_len=1.5", "integer"]),
    ("sample", ["ckpt_path=x", "sampler=sde", "sampler.gamma=nan"], ["sampler.gamma=nan", "finite"]),
    ("sample", ["ckpt_path=x", "sampler=sde", "sampler.gamma=inf"], ["sampler.gamma=inf", "finite"]),
    ("sample", ["ckpt_path=x", "sampler=commit", "sampler.threshold=nan"], ["sampler.threshold=nan", "finite"]),
    ("sample", ["ckpt_path=x", "time@sampler.time=logit_normal", "sampler.time.std=-inf"], ["sampler.time.std"]),
    ("sample", [], ["ckpt_path is required"]),
    ("train", ["data=local"], ["data.corpus.train_glob is required"]),
    ("train", ["hydra.run.dir=/etc/hostname/run"], ["hydra.run.dir=/etc/hostname/run", "is a file"]),
    ("sample", ["ckpt_path=x", "-m", "sampler=ode,sde"], ["flags such as -m"]),
    ("sample", ["-m", "ckpt_path=x", "sampler=sde", "sampler.gamm=interval(0,2)"], ["sampler.gamm", "not a key"]),
    ("sample", ["-m", "ckpt_path=x", "sampler=sde", "sampler.gamma=interval(0,inf)"], ["sampler.gamma=inf", "finite"]),
]


@pytest.mark.parametrize("config,argv,needles", PREFLIGHT_CASES, ids=[" ".join(c[1]) or "(none)" for c in
                                                                         PREFLIGHT_CASES])
def test_preflight_refuses_bad_command_lines_in_one_line(config, argv, needles):
    with pytest.raises(ConfigError) as err:
        check_command_line(CONF, config, argv)
    assert "\n" not in str(err.value)
    for needle in needles:
        assert needle in str(err.value), str(err.value)


def test_preflight_accepts_good_command_lines():
    for config, argv in [("sample", ["-m", "ckpt_path=x", "sampler=ode,sde", "sampler.steps=4,32"]),
                         ("sample", ["-m", "hydra/sweeper=sampler_study", "ckpt_path=x", "sampler=sde",
                                     "sampler.gamma=interval(0,2)"]),  # an Optuna search space
                         ("train", ["experiment=quickstart", "trainer.val_check_interval=0.5"]),
                         ("train", ["+trainer.detect_anomaly=true", "data=local", "data.corpus.train_glob=a/*.txt"])]:
        check_command_line(CONF, config, argv)


RUN_CASES = [  # sample.py overrides that only the run itself can judge
    (["seq_len=1.5"], ["seq_len=1.5", "integer"]),
    (["seq_len=4096"], ["seq_len=4096", "trained on 32-token blocks"]),
    (["seq_len=0"], ["seq_len=0"]),
    (["sampler.steps=100000"], ["sampler.steps=100000", "max_sampler_steps"]),
    (["sampler=sde", "sampler.gamma=-1"], ["sampler.gamma=-1", ">= 0"]),
    (["num_samples=0"], ["num_samples=0", ">= 1"]),
]


@pytest.mark.parametrize("extra,needles", RUN_CASES, ids=[" ".join(c[0]) for c in RUN_CASES])
def test_sampling_refuses_bad_values_in_one_line(extra, needles, trained, tmp_path, capsys):
    line = expect_exit_2(capsys, lambda: guarded(sample_entry.run, sample_cfg(trained["ckpt"], tmp_path, *extra)))
    for needle in needles:
        assert needle in line, line
    assert not (tmp_path / "samples.jsonl").exists()


def test_a_directory_as_ckpt_path_is_named_as_such(trained, tmp_path, capsys):
    line = expect_exit_2(capsys, lambda: guarded(sample_entry.run, sample_cfg(trained["dir"], tmp_path)))
    assert "is a directory" in line and ".ckpt" in line


def test_binary_corpus_files_are_skipped_with_a_warning_and_an_empty_corpus_refused(tmp_path, cache_dir, capsys):
    from textflow.data import LocalText

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("a", "b"):
        (corpus / f"{name}.txt").write_text("The quick brown fox jumps over the lazy dog.\n" * 40)
    (corpus / "image.txt").write_bytes(bytes(range(256)) * 64)
    docs = LocalText(train_glob=str(corpus / "*.txt"), val_glob=str(corpus / "b.txt")).documents("train")
    assert [name for name, _ in docs] == ["a"]
    err = capsys.readouterr().err
    assert "skipping" in err and "image.txt" in err and "replacement characters" in err
    only_binary = tmp_path / "binary"
    only_binary.mkdir()
    for name in ("x", "y"):
        (only_binary / f"{name}.bin").write_bytes(b"\x00\xff" * 500)
    cfg = tiny_train(tmp_path / "run", cache_dir, "data=local", f"data.corpus.train_glob={only_binary}/*.bin")
    line = expect_exit_2(capsys, lambda: guarded(train_entry.run, cfg))
    assert "is empty" in line and "non-text" in line


def test_a_report_never_mixes_two_runs_in_one_row(trained, tmp_path):
    """A kill between the two renames of one run leaves its files beside another run's: the sweep
    report names the folder as inconsistent instead of mixing the two."""
    from textflow.sampling.report import collect

    first, second = tmp_path / "0_a", tmp_path / "1_b"
    sample_entry.run(sample_cfg(trained["ckpt"], first))
    sample_entry.run(sample_cfg(trained["ckpt"], second))
    (first / "metrics.json").write_text((second / "metrics.json").read_text())
    rows, _ = collect(tmp_path)
    broken = [r for r in rows if r["run"] == "0_a"]
    assert len(broken) == 1 and "different runs" in broken[0]["error"]


def test_a_truncated_metrics_file_becomes_an_error_row_not_a_traceback(trained, tmp_path):
    from textflow.sampling.report import collect

    run = tmp_path / "0_a"
    sample_entry.run(sample_cfg(trained["ckpt"], run))
    (run / "metrics.json").write_text('{"sampler": {"name": "ode"')
    rows, _ = collect(tmp_path)
    assert len(rows) == 1 and "unreadable outputs" in rows[0]["error"]


def test_a_checkpoint_with_broken_run_info_is_refused_in_one_line(trained, tmp_path, capsys):
    ckpt = torch.load(trained["ckpt"], map_location="cpu", weights_only=True)
    del ckpt["textflow"]["seq_len"]
    torch.save(ckpt, tmp_path / "no_seq_len.ckpt")
    line = expect_exit_2(capsys, lambda: guarded(sample_entry.run, sample_cfg(tmp_path / "no_seq_len.ckpt",
                                                                                tmp_path / "s")))
    assert "seq_len=missing" in line
    ckpt["textflow"].update(seq_len=32, tokenizer="{not json")
    torch.save(ckpt, tmp_path / "bad_tokenizer.ckpt")
    line = expect_exit_2(capsys, lambda: guarded(sample_entry.run, sample_cfg(tmp_path / "bad_tokenizer.ckpt",
                                                                                tmp_path / "s2")))
    assert "tokenizer that cannot be read" in line
