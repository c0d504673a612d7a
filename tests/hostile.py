"""Shared by the hostile-input tests (docs/reliability.md): a real tiny checkpoint, configs composed like
the entry points', the one-line error check, and hostile copies of a checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

import train as train_entry
from conftest import ROOT, compose_config, tiny_train_overrides

CONF = ROOT / "conf"


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
