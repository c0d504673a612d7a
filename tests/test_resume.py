"""An interrupted run resumes exactly: same data order, same per-step noise, same final weights bit for
bit (textflow.data.resumable, textflow.training.rng); a checkpoint of another model is refused with one
line naming the keys that differ (textflow.training.resume).

Bit-exactness holds here on CPU with validation and sample logging on. What it cannot cover: CUDA runs
are exact only as far as their kernels are deterministic (atomics in some backward kernels, cuBLAS
workspaces), i.e. with ``torch.use_deterministic_algorithms(True)`` and
``CUBLAS_WORKSPACE_CONFIG=:4096:8``; otherwise a resumed GPU run matches only to the run-to-run noise of
those kernels, as two uninterrupted GPU runs do. A resume with another batch size, world size or seed
continues from the same position in the data but is, of course, not the same run. A validation due
at a checkpoint's step runs after that checkpoint is written, and Lightning does not repeat it on
resume: if the run died during it, its metrics are missing from the logs; the weights are unaffected."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import Dataset

import train as train_entry
from conftest import compose_config, tiny_train_overrides
from textflow.cli import guarded, instantiate_dict
from textflow.data.resumable import ResumableSampler, resumable_loader
from textflow.errors import CheckpointError
from textflow.training.resume import UNSET, check_same_model, config_diff, describe_diff
from textflow.training.rng import training_step_seed

STEPS = 12  # the fixture corpus has 60 blocks of 32 tokens: 7 batches of 8 per epoch


class Interrupted(Exception):
    """Stands for a killed process."""


class Recorder(L.Callback):
    """Records the batch of every training step; ``crash_at``: raise at the start of the batch after
    step ``crash_at`` (its checkpoint is written by then); ``burn``: draw that many numbers from the
    global torch RNG after every step (randomness a callback consumes must not change training)."""

    def __init__(self, crash_at: int | None = None, burn: int = 0):
        self.crash_at, self.burn = crash_at, burn
        self.batches: list[tuple[int, torch.Tensor]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.crash_at:
            raise Interrupted(f"killed after step {self.crash_at}")
        self.batches.append((trainer.global_step, batch.clone()))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        torch.rand(self.burn)


def overrides(out: Path, cache: Path, *extra: str) -> list[str]:
    return tiny_train_overrides(out, cache) + [
        f"trainer.max_steps={STEPS}", "callbacks.model_checkpoint.every_n_train_steps=4",
        "callbacks.diagnostics.every_n_validations=0", *extra]  # validation and sample logging stay on


def train_with(monkeypatch, cfg, recorder: Recorder):
    """``train.run(cfg)`` with ``recorder`` appended to the configured callbacks."""
    monkeypatch.setattr(train_entry, "instantiate_dict", lambda node: instantiate_dict(node) + (
        [recorder] if node is not None and "model_checkpoint" in node else []))
    return train_entry.run(cfg)


def checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, cache_dir):
    out = tmp_path_factory.mktemp("uninterrupted")
    recorder = Recorder()
    with pytest.MonkeyPatch.context() as mp:
        _, objects = train_with(mp, compose_config("train", overrides(out, cache_dir)), recorder)
    assert objects["trainer"].num_training_batches == 7 and objects["trainer"].global_step == STEPS
    return {"dir": out, "batches": recorder.batches, "ckpt": checkpoint(out / "checkpoints" / "final.ckpt")}


@pytest.mark.parametrize("every,crash_at", [
    (4, 8),  # mid-epoch, in the second epoch (7 batches per epoch), after a validation (step 5)
    (7, 7),  # at the last batch of an epoch: the resumed run starts the next epoch
    (5, 5),  # at a validation step: validation runs after the checkpoint; the resumed run skips it
])
def test_interrupted_run_resumes_bit_for_bit(uninterrupted, tmp_path, cache_dir, monkeypatch, every, crash_at):
    """Interrupt after step ``crash_at``, rerun the same command into the same folder: the steps trained
    on the same batches in the same order, and the final weights (EMA included), optimizer moments
    and scheduler equal the uninterrupted run's exactly, although validation ran at other points and
    the callbacks drew other amounts of global randomness in between."""
    every_n = f"callbacks.model_checkpoint.every_n_train_steps={every}"
    cfg = compose_config("train", overrides(tmp_path, cache_dir, every_n))
    first = Recorder(crash_at=crash_at, burn=3)
    with pytest.raises(Interrupted):
        train_with(monkeypatch, cfg, first)
    last = checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert last["global_step"] == crash_at
    # Lightning does not prefetch a sized loader: the saved position is exactly the trained batches
    assert last["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [
        {"epoch": (crash_at - 1) // 7, "samples": ((crash_at - 1) % 7 + 1) * 8}]

    second = Recorder(burn=11)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics, _ = train_with(monkeypatch, cfg, second)
    assert not [w for w in caught if "not resumable" in str(w.message)]
    assert metrics["global_step"] == STEPS and second.batches[0][0] == crash_at

    seen = first.batches + second.batches
    assert [step for step, _ in seen] == list(range(STEPS))
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(seen, uninterrupted["batches"], strict=True))

    resumed, straight = checkpoint(tmp_path / "checkpoints" / "final.ckpt"), uninterrupted["ckpt"]
    assert resumed["state_dict"].keys() == straight["state_dict"].keys()
    assert any(k.startswith("ema.module.") for k in straight["state_dict"])
    different = [k for k, v in straight["state_dict"].items() if not torch.equal(v, resumed["state_dict"][k])]
    assert different == [], different
    for a, b in zip(straight["optimizer_states"][0]["state"].values(),
                    resumed["optimizer_states"][0]["state"].values(), strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert straight["lr_schedulers"] == resumed["lr_schedulers"]


def test_interrupted_distillation_resumes_at_a_round_boundary(uninterrupted, tmp_path, cache_dir, monkeypatch):
    """Interrupted right after a round's last step (its checkpoint written then), progressive
    distillation goes on with the next round, not a repeat of this one, and its students and final
    state equal an uninterrupted run's bit for bit; rerun once finished, it trains nothing more."""
    teacher = uninterrupted["dir"] / "checkpoints" / "final.ckpt"

    def distill_cfg(out: Path):
        return compose_config("train", tiny_train_overrides(out, cache_dir) + [
            "stage=distill", f"teacher_ckpt={teacher}", "stage.start_steps=8", "stage.min_steps=2",
            "stage.steps_per_round=3", "trainer.max_steps=100", "callbacks.samples=null",
            "callbacks.diagnostics.every_n_validations=0", "callbacks.model_checkpoint.every_n_train_steps=3"])

    _, straight = train_with(monkeypatch, distill_cfg(tmp_path / "straight"), Recorder())
    cfg = distill_cfg(tmp_path / "resumed")
    with pytest.raises(Interrupted):
        train_with(monkeypatch, cfg, Recorder(crash_at=3, burn=5))
    _, resumed = train_with(monkeypatch, cfg, Recorder())
    assert straight["trainer"].global_step == resumed["trainer"].global_step == 6
    a, b = checkpoint(straight["checkpoint"])["textflow"], checkpoint(resumed["checkpoint"])["textflow"]
    assert sorted(a["students"]) == sorted(b["students"]) == ["2", "4"]
    for k in a["students"]:
        assert all(torch.equal(v, b["students"][k][n]) for n, v in a["students"][k].items())
    rerun = Recorder()
    _, again = train_with(monkeypatch, cfg, rerun)
    assert again["trainer"].global_step == 6 and rerun.batches == []


# -- the data order and the step seeds ---------------------------------------------------------------

class CountingDataset(Dataset):
    def __init__(self, n: int):
        self.n, self.loaded = n, []

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        self.loaded.append(i)
        return torch.tensor(i)


def test_order_is_a_function_of_seed_and_epoch_and_shards_cover_the_data():
    a, b = ResumableSampler(range(50), seed=3), ResumableSampler(range(50), seed=3)
    torch.rand(5)  # the global RNG plays no part
    assert list(a) == list(b) and sorted(a) == list(range(50))
    b.set_epoch(1)
    assert list(b) != list(a) and list(b) == a.order(1)
    assert list(ResumableSampler(range(50), seed=4)) != list(a)
    shards = [ResumableSampler(range(50), seed=3, num_replicas=4, rank=r) for r in range(4)]
    assert {len(s) for s in shards} == {13} and set().union(*map(set, shards)) == set(range(50))


def test_loader_state_round_trip_skips_without_loading():
    data = CountingDataset(40)
    loader = resumable_loader(data, batch_size=4, seed=1)  # 10 batches
    loader.sampler.set_epoch(2)
    it = iter(loader)
    head = [next(it) for _ in range(3)]
    state = loader.state_dict()
    assert state == {"epoch": 2, "samples": 12}
    tail = list(it)

    fresh_data = CountingDataset(40)
    fresh = resumable_loader(fresh_data, batch_size=4, seed=1)
    fresh.load_state_dict(state)
    fresh.sampler.set_epoch(2)  # Lightning sets the epoch after iter() but before the first batch
    it = iter(fresh)
    assert all(torch.equal(x, y) for x, y in zip(list(it), tail, strict=True))
    assert sorted(fresh_data.loaded) == sorted(torch.cat(tail).tolist())  # the 12 skipped blocks were never read
    assert sorted(torch.cat(head + tail).tolist()) == list(range(40))
    assert fresh.state_dict() == {"epoch": 2, "samples": 40}

    rolled = resumable_loader(CountingDataset(40), batch_size=4, seed=1)
    rolled.load_state_dict({"epoch": 2, "samples": 40})
    rolled.sampler.set_epoch(3)  # Lightning went on to the next epoch: the saved position does not apply
    assert len(list(rolled)) == 10 and rolled.state_dict() == {"epoch": 3, "samples": 40}


def test_step_seeds_are_distinct_streams():
    seeds = {training_step_seed(s, seed=0) for s in range(100)}
    assert len(seeds) == 100
    assert training_step_seed(5, seed=0) != training_step_seed(5, seed=1)
    assert len({training_step_seed(5, seed=0), training_step_seed(5, seed=0, rank=1),
                training_step_seed(5, seed=0, micro_batch=1)}) == 3


# -- a changed model config on resume -----------------------------------------------------------------

def test_config_diff_names_each_differing_key():
    old = {"autoencoder": {"_target_": "A", "latent_dim": 16, "noise": [0.1, 0.2]},
           "backbone": {"_target_": "DiT", "width": 32, "depth": 2}, "data": {"seq_len": 32}}
    new = {"autoencoder": {"_target_": "A", "latent_dim": 32, "noise": [0.1, 0.2], "extra": True},
           "backbone": {"_target_": "DiT", "width": 64, "depth": 2}, "data": {"seq_len": 32}}
    diff = config_diff(old, new)
    assert diff == [("autoencoder.latent_dim", 16, 32), ("autoencoder.extra", UNSET, True), ("backbone.width", 32, 64)]
    assert describe_diff(diff) == ("autoencoder.latent_dim (16 -> 32), autoencoder.extra (unset -> true), "
                                   "backbone.width (32 -> 64)")
    # another class: only the _target_ is named, not every key of two unrelated classes
    assert config_diff({"autoencoder": {"_target_": "A", "x": 1}}, {"autoencoder": {"_target_": "B", "y": 2}}) == [
        ("autoencoder._target_", "A", "B")]
    many = config_diff({f"k{i}": i for i in range(11)}, {f"k{i}": -i for i in range(11)})
    assert len(many) == 10 and describe_diff(many).endswith("k8 (8 -> -8) and 2 more")


def test_check_same_model_compares_architecture_not_training_settings():
    def info(seq_len=32, lr=1e-3, width=32):
        config = (f"autoencoder: {{_target_: textflow.autoencoders.EmbeddingAutoencoder, latent_dim: 16}}\n"
                  f"backbone: {{_target_: textflow.backbones.DiT, width: {width}}}\n"
                  f"path: {{_target_: textflow.paths.LinearPath}}\nmodule: {{optimizer: {{lr: {lr}}}}}\n"
                  f"data: {{seq_len: {seq_len}, batch_size: 8}}\n")
        return {"config": config, "vocab_size": 10, "seq_len": seq_len, "tokenizer": "{}", "kind": "flow"}

    check_same_model("x.ckpt", info(), info(lr=5e-4))  # optimizer (and any trainer setting) may change
    with pytest.raises(CheckpointError, match=r"different model config: backbone\.width \(32 -> 64\), "
                                              r"data\.seq_len \(32 -> 64\); resume with the same config"):
        check_same_model("x.ckpt", info(), info(seq_len=64, width=64))
    with pytest.raises(CheckpointError, match="another vocabulary"):
        check_same_model("x.ckpt", info(), {**info(), "vocab_size": 11})
    with pytest.raises(CheckpointError, match="was written by a kind='autoencoder' run but this run is kind='flow'"):
        check_same_model("x.ckpt", {**info(), "kind": "autoencoder"}, info())
    # an interpolation in checkpoint text is refused, never resolved (textflow.checkpoint.safe_config)
    env = {**info(), "config": "backbone: {width: '${oc.env:HOME}'}\n"}
    with pytest.raises(CheckpointError, match=r"backbone\.width=.*is an interpolation"):
        check_same_model("x.ckpt", env, {**info(), "config": "backbone: {width: 32}\n"})


def test_resume_with_another_model_config_is_one_line_exit_2(uninterrupted, tmp_path, cache_dir, capsys):
    out = tmp_path / "changed"
    (out / "checkpoints").mkdir(parents=True)
    shutil.copy(uninterrupted["dir"] / "checkpoints" / "last.ckpt", out / "checkpoints" / "last.ckpt")
    cfg = compose_config("train", overrides(out, cache_dir, "autoencoder.latent_dim=32", "backbone.width=64"))
    expected = (f"ckpt_path='{out / 'checkpoints' / 'last.ckpt'}' was trained with a different model config: "
                "autoencoder.latent_dim (16 -> 32), backbone.width (32 -> 64); "
                "resume with the same config or start a new run folder")
    with pytest.raises(CheckpointError) as err:
        train_entry.run(cfg)
    assert str(err.value) == expected
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        guarded(train_entry.run, cfg)
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: {expected}"
