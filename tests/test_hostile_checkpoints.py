"""A checkpoint is data (docs/reliability.md, "Loading checkpoints"): hostile configs, generated and
hand-made, are refused in one line with exit status 2 by every reader, and their payload never runs."""

from __future__ import annotations

import os
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
from conftest import ROOT
from textflow.diagnostics import cli as diagnose
from textflow.bench import __main__ as bench_main
from textflow.checkpoint import ALLOWED_TARGETS, read_checkpoint
from textflow.checkpoint.safe_config import check_config_data, parse_checkpoint_config
from textflow.cli import guarded
from textflow.errors import CheckpointError
from hostile import CONF, expect_exit_2, hostile_copy, payload, sample_cfg, tiny_train, trained  # noqa: F401


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

    stored = ("autoencoder", "backbone", "path", "module", "condition", "data", "tokenizer", "time", "optimizer",
              "optimizer/schedule")
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
