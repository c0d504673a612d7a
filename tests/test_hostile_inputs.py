"""textflow tried as a hostile or careless user would (docs/reliability.md).

Every row asserts exit status 2, exactly one ``error:`` line naming the bad value, and that nothing
was executed or lost. Checkpoint payloads try to write a marker file; the marker must stay absent.
"""

from __future__ import annotations

import csv
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

import sample as sample_entry
import train as train_entry
from conftest import ROOT, compose_config, tiny_train_overrides
from textflow.diagnostics import cli as diagnose
from textflow.bench import __main__ as bench_main
from textflow.checkpoint import ALLOWED_TARGETS, read_checkpoint
from textflow.checkpoint.safe_config import check_config_data, parse_checkpoint_config
from textflow.cli import guarded
from textflow.cli.preflight import check_command_line
from textflow.errors import CheckpointError, ConfigError
from textflow.io import atomic_write_json, atomic_write_jsonl
from textflow.runs.lock import LOCK_NAME, RunFolderLock

CONF = ROOT / "conf"


# ------------------------------------------------------------------------------------------------ helpers
def expect_exit_2(capsys, call) -> str:
    """Run ``call()`` (an entry point behind its guard); return its one ``error:`` line."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        call()
    assert exit_info.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1, err
    return err[0]


def tiny_train(out: Path, cache: Path, *extra: str):
    return compose_config("train", tiny_train_overrides(out, cache) + list(extra))


def sample_cfg(ckpt, out: Path, *extra: str):
    return compose_config("sample", [f"ckpt_path={ckpt}", f"dirs.output_dir={out}", f"hydra.run.dir={out}",
                                     "num_samples=2", "batch_size=2", "sampler.steps=2", "print_samples=0",
                                     "evaluation=diversity", "reference=false", "logger=none", *extra])


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cache_dir):
    out = tmp_path_factory.mktemp("hostile-train")
    cfg = tiny_train(out, cache_dir, "trainer.max_steps=4", "callbacks.model_checkpoint.every_n_train_steps=2",
                     "callbacks.samples.every_n_validations=0", "callbacks.diagnostics.every_n_validations=0")
    _, objects = train_entry.run(cfg)
    return {"dir": out, "ckpt": Path(objects["checkpoint"])}


def hostile_copy(src: Path, dst: Path, mutate) -> Path:
    """A copy of a real checkpoint whose stored config ``mutate(dict)`` changed."""
    ckpt = torch.load(src, map_location="cpu", weights_only=True)
    config = yaml.safe_load(ckpt["textflow"]["config"])
    result = mutate(config)
    ckpt["textflow"]["config"] = result if isinstance(result, str) else yaml.safe_dump(config)
    torch.save(ckpt, dst)
    return dst


def payload(marker: Path) -> dict:
    return {"_target_": "os.system", "_args_": [f"touch {marker}"]}


# ------------------------------------------------------------------------------------------------ 1. checkpoints are data
DANGEROUS = ["os.system", "builtins.eval", "builtins.exec", "subprocess.run", "posix.system", "torch.load",
             "torch.hub.load", "torch.jit.load", "torch.utils.cpp_extension.load_inline", "pickle.loads",
             "hydra.utils.get_method", "hydra.utils.instantiate", "textflow.io.os.system",
             "textflow.checkpoint.files.torch.load", "textflow.data.corpora.os.system", "textflow.training.flow.torch.load",
             "textflow.cli.instantiate", "lightning.pytorch.cli.LightningCLI", "torch.optim.AdamW.__init__",
             "textflow.backbones.DiT.__init__.__globals__", "textflow.autoencoders.EmbeddingAutoencoderX",
             "textflow.autoencoders", "textflow", "torch", "textflow.training.optim.math.exp", "functools.partial"]

dotted = st.lists(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True), min_size=1, max_size=5).map(".".join)
targets = st.one_of(st.sampled_from(DANGEROUS), dotted,
                    st.builds(lambda a, b: a + b, st.sampled_from(sorted(ALLOWED_TARGETS)),
                              st.sampled_from(["X", ".__init__", ".__call__", ".os.system", "_", " "])))


@st.composite
def hostile_configs(draw):
    """A config tree with one hostile node hidden at a random depth, in dicts or lists."""
    target = draw(targets.filter(lambda t: t not in ALLOWED_TARGETS))
    node: dict = {"_target_": target, "_args_": ["touch /nonexistent/marker"]}
    if draw(st.booleans()):
        node["_partial_"] = True
    for _ in range(draw(st.integers(0, 5))):
        key = draw(st.sampled_from(["autoencoder", "module", "optimizer", "inner", "corpus", "x"]))
        node = [node] if draw(st.integers(0, 3)) == 0 else {key: node, "_target_": "textflow.backbones.DiT"}
    return {"backbone": {"_target_": "textflow.backbones.DiT", "width": 8}, "data": node}


@given(config=hostile_configs())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_generated_hostile_configs_are_refused_in_one_line(config):
    with pytest.raises(CheckpointError) as err:
        parse_checkpoint_config(yaml.safe_dump(config), source="ckpt_path='x.ckpt'")
    assert "\n" not in str(err.value) and "refusing ckpt_path='x.ckpt'" in str(err.value)


@given(special=st.sampled_from(["_args_", "_convert_", "_recursive_", "_partial_", "_set_flag_", "__class__"]),
       depth=st.integers(0, 4))
@settings(max_examples=40, deadline=None)
def test_hydra_special_keys_are_refused_at_any_depth(special, depth):
    node: dict = {"_target_": "textflow.paths.LinearPath", special: True if special == "_partial_" else "all"}
    for _ in range(depth):
        node = {"child": [node]}
    with pytest.raises(CheckpointError, match=special):
        check_config_data({"path": node}, source="test")


@pytest.mark.parametrize("text", [
    "path: {_target_: textflow.paths.LinearPath, sigma: '${oc.env:HOME}'}",
    "path: {_target_: textflow.paths.LinearPath, sigma: '${marker_resolver:}'}",
    "path: {_target_: textflow.paths.LinearPath, sigma: '${now:%Y}'}",
    "'${oc.env:HOME}': 1",
    "path: !!python/object/apply:os.system ['touch /nonexistent/marker']",
    "- not a mapping",
], ids=["oc.env", "custom-resolver", "now", "key-interpolation", "yaml-python-tag", "list"])
def test_interpolations_resolvers_and_yaml_tags_never_run(text, tmp_path):
    marker = tmp_path / "resolver-ran"
    OmegaConf.register_new_resolver("marker_resolver", lambda: marker.write_text("ran"), replace=True)
    with pytest.raises(CheckpointError) as err:
        parse_checkpoint_config(text, source="test")
    assert "\n" not in str(err.value) and not marker.exists()


def test_allowed_targets_are_exactly_the_classes_conf_builds_for_a_stored_run():
    """The allow-list matches conf/'s stored groups both ways, and every entry is a class."""
    import importlib
    import inspect

    stored = ("autoencoder", "backbone", "path", "module", "data", "tokenizer", "time", "optimizer", "optimizer/schedule")
    in_conf = set()
    for group in stored:
        for f in (CONF / group).glob("*.yaml"):
            in_conf.update(line.split(":", 1)[1].split("#")[0].strip() for line in f.read_text().splitlines()
                           if line.strip().startswith("_target_:"))
    in_conf.add("textflow.autoencoders.NormalizedAutoencoder")  # written by stage=flow autoencoder_ckpt=...
    assert in_conf == set(ALLOWED_TARGETS)
    for dotted_path in ALLOWED_TARGETS:
        module, _, name = dotted_path.rpartition(".")
        assert inspect.isclass(getattr(importlib.import_module(module), name)), dotted_path


def test_pickled_code_in_a_checkpoint_never_runs(tmp_path):
    marker = tmp_path / "pickle-ran"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    bad = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "textflow": {"config": "{}"}, "evil": Evil()}, bad)
    with pytest.raises(CheckpointError, match="is not a readable checkpoint"):
        read_checkpoint(bad)
    assert not marker.exists()


HOSTILE_MUTATIONS = {
    "target-os-system": lambda m: lambda c: c["autoencoder"].update(payload(m)),
    "nested-in-list": lambda m: lambda c: c["module"].update({"val_times": [0.5, {"x": payload(m)}]}),
    "module-attribute": lambda m: lambda c: c["path"].update({"_target_": "textflow.io.os.system",
                                                               "_args_": [f"touch {m}"]}),
    "prefix-match": lambda m: lambda c: c["backbone"].update({"_target_": "textflow.backbones.DiT.__init__"}),
    "partial-function": lambda m: lambda c: c["module"]["scheduler"].update({"_target_": "builtins.exec",
                                                                               "_partial_": True}),
    "env-interpolation": lambda m: lambda c: c["backbone"].update({"width": "${oc.env:HOME}"}),
}


@pytest.fixture(scope="module")
def hostile_ckpts(trained, tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    marker = folder / "MARKER"
    return marker, {name: hostile_copy(trained["ckpt"], folder / f"{name}.ckpt", make(marker))
                    for name, make in HOSTILE_MUTATIONS.items()}


def _readers(ckpt: Path, tmp: Path, cache: Path):
    """Every place a checkpoint is read, as a callable that runs it through its entry point's guard."""
    train = lambda *extra: (lambda: guarded(train_entry.run, tiny_train(tmp / "t", cache, *extra)))  # noqa: E731
    return {
        "sample.py ckpt_path": lambda: guarded(sample_entry.run, sample_cfg(ckpt, tmp / "s")),
        "train.py ckpt_path (resume)": train(f"ckpt_path={ckpt}"),
        "train.py autoencoder_ckpt": train(f"autoencoder_ckpt={ckpt}"),
        "train.py teacher_ckpt": train("stage=distill", f"teacher_ckpt={ckpt}"),
        "textflow.diagnostics.report": lambda: guarded(diagnose.main, [str(ckpt), "--out", str(tmp / "d")]),
        "textflow.bench sampling": lambda: guarded(bench_main.main, ["sampling", "--ckpt", str(ckpt), "--out",
                                                                      str(tmp / "b")]),
    }


@pytest.mark.parametrize("mutation", sorted(HOSTILE_MUTATIONS))
def test_every_reader_refuses_a_hostile_checkpoint(mutation, hostile_ckpts, tmp_path, cache_dir, capsys):
    marker, ckpts = hostile_ckpts
    for reader, call in _readers(ckpts[mutation], tmp_path, cache_dir).items():
        line = expect_exit_2(capsys, call)
        assert "refusing" in line and mutation + ".ckpt" in line, (reader, line)
        assert not marker.exists(), reader


def test_the_cli_refuses_a_hostile_checkpoint_with_exit_status_2(hostile_ckpts, tmp_path):
    marker, ckpts = hostile_ckpts
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "WANDB_MODE": "offline"}
    proc = subprocess.run([sys.executable, "sample.py", f"ckpt_path={ckpts['target-os-system']}",
                           f"hydra.run.dir={tmp_path}"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: refusing ckpt_path=") and "os.system" in lines[0], lines
    assert not marker.exists()


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


def test_checkpoints_written_before_the_training_package_still_load(trained, tmp_path):
    """Legacy exact target names (the old module paths, the old _partial_ LR function) are renamed as
    data, then checked like any other config."""
    from textflow.checkpoint import load_run

    def legacy(config):
        config["module"]["_target_"] = "textflow.module.LatentFlowModule"
        config["module"]["scheduler"].update({"_target_": "textflow.optim.warmup_cosine", "_partial_": True})
        config["module"]["train_time"]["_target_"] = "textflow.timegrids.LogitNormalTime"

    old = hostile_copy(trained["ckpt"], tmp_path / "legacy.ckpt", legacy)
    assert type(load_run(old).module).__name__ == "LatentFlowModule"
