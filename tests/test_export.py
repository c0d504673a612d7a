"""python -m textflow.export: a checkpoint as safetensors + JSON + tokenizer + model card, read back by every
entry point with the same checks, and giving the same samples (docs/reliability.md, "Exported models")."""

from __future__ import annotations

import json
import os

import pytest
import torch

import train as train_entry
from conftest import compose_config, tiny_train_overrides
from test_cli import run_cli
from textflow.checkpoint import load_run, read_checkpoint
from textflow.checkpoint.folder import read_folder, write_folder
from textflow.errors import CheckpointError
from textflow.export.__main__ import main as export_main


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory, cache_dir):
    out = tmp_path_factory.mktemp("export-train")
    _, objs = train_entry.run(compose_config("train", tiny_train_overrides(out, cache_dir) + ["trainer.max_steps=2"]))
    return objs["checkpoint"]


@pytest.fixture(scope="module")
def exported(tiny_ckpt, tmp_path_factory):
    out = tmp_path_factory.mktemp("exported") / "model"
    export_main([str(tiny_ckpt), str(out)])
    return out


def test_export_writes_the_four_files_and_no_pickle(exported, tiny_ckpt):
    assert sorted(p.name for p in exported.iterdir()) == ["README.md", "model.safetensors", "textflow.json",
                                                           "tokenizer.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert exported.stat().st_mode & 0o777 == 0o777 & ~umask  # shareable, not the temporary folder's 0700
    assert (exported / "model.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask
    info = json.loads((exported / "textflow.json").read_text())
    assert info["kind"] == "flow" and "tokenizer" not in info and info["students"] == []
    card = (exported / "README.md").read_text()
    assert "textflow.load_pretrained" in card and "parameters" in card
    assert "`train/loss`" in card and "`global_step`" in card  # from the run's train_metrics.json
    original, again = read_checkpoint(tiny_ckpt), read_checkpoint(exported)
    assert set(original["state_dict"]) == set(again["state_dict"])
    assert all(torch.equal(original["state_dict"][k], again["state_dict"][k]) for k in original["state_dict"])
    assert {k: v for k, v in again["textflow"].items()} == {k: v for k, v in original["textflow"].items()}


def test_exported_and_original_give_identical_samples(exported, tiny_ckpt):
    import textflow

    texts = textflow.load_pretrained(exported).sample(3, sampler="sde", steps=3, gamma=1.0, seed=5)
    assert texts == textflow.load_pretrained(tiny_ckpt).sample(3, sampler="sde", steps=3, gamma=1.0, seed=5)
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)
    assert load_run(exported).info["vocab_size"] == load_run(tiny_ckpt).info["vocab_size"]


def test_sample_py_and_the_diagnostics_command_accept_an_exported_folder(exported, tmp_path):
    proc = run_cli("sample.py", f"ckpt_path={exported}", "num_samples=2", "sampler.steps=2", "evaluation=diversity",
                   f"hydra.run.dir={tmp_path / 's'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "s" / "samples.jsonl").is_file()
    proc = run_cli("-m", "textflow.diagnostics", str(exported), "--blocks", "2", "--steps", "2",
                   "--out", str(tmp_path / "d"))
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_the_folder_keeps_students_and_refuses_what_a_checkpoint_refuses(tmp_path):
    state = {"net.w": torch.arange(6.0).view(2, 3), "ema.w": torch.ones(2, 3)}
    info = {"format": 1, "kind": "flow", "config": "{}", "tokenizer": None, "vocab_size": 7, "seq_len": 4,
            "students": {"2": {"backbone.w": torch.zeros(3)}, "1": {"backbone.w": torch.full((3,), 2.0)}},
            "distill": {"rounds": [2, 1]}}
    out = write_folder({"state_dict": state, "textflow": info}, tmp_path / "m", card="card")
    back = read_folder(out, where="test")
    assert torch.equal(back["state_dict"]["net.w"], state["net.w"]) and back["textflow"]["distill"] == {"rounds": [2, 1]}
    assert torch.equal(back["textflow"]["students"]["1"]["backbone.w"], torch.full((3,), 2.0))
    with pytest.raises(CheckpointError, match="exists and is not an empty folder"):
        write_folder({"state_dict": state, "textflow": info}, out, card="card")
    bad = json.loads((out / "textflow.json").read_text())
    bad["students"] = ["2"]  # weights of K = 1 are in the file but not listed
    (out / "textflow.json").write_text(json.dumps(bad))
    with pytest.raises(CheckpointError, match="student K=1"):
        read_folder(out, where="test")
    (out / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="unreadable model.safetensors"):
        read_folder(out, where="test")


def test_an_exported_config_naming_foreign_code_is_refused(exported, tmp_path):
    import shutil

    copy = tmp_path / "hostile"
    shutil.copytree(exported, copy)
    info = json.loads((copy / "textflow.json").read_text())
    info["config"] = info["config"].replace("textflow.backbones.DiT", "os.system", 1)
    (copy / "textflow.json").write_text(json.dumps(info))
    with pytest.raises(CheckpointError, match="os.system"):
        load_run(copy)
