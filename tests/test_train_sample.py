"""End to end through the real entry points: train.py debug=fast on the fixture corpus, then sample.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import sample as sample_entry
import train as train_entry
from conftest import compose_config, tiny_train_overrides
from textflow.checkpoint import load_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cache_dir):
    out = tmp_path_factory.mktemp("train")
    cfg = compose_config("train", tiny_train_overrides(out, cache_dir))
    metrics, objects = train_entry.run(cfg)
    return {"dir": out, "metrics": metrics, "ckpt": objects["checkpoint"], "cfg": cfg}


def sample_cfg(ckpt: Path, out: Path, *extra: str):
    return compose_config("sample", [f"ckpt_path={ckpt}", f"dirs.output_dir={out}", "num_samples=2",
                                     "batch_size=2", "sampler.steps=2", "print_samples=1", "evaluation=diversity", *extra])


def test_train_writes_checkpoint_metrics_and_csv_logs(trained):
    out = trained["dir"]
    assert trained["ckpt"].is_file() and (out / "checkpoints" / "last.ckpt").is_file()
    assert "val/flow_loss" in trained["metrics"] and "val/readout_acc" in trained["metrics"]
    metrics_csv = (out / "csv" / "metrics.csv").read_text()
    for key in ("train/loss", "train/flow_loss", "train/readout_ce", "val/flow_loss", "samples/ode_K2/unigram_entropy"):
        assert key in metrics_csv, key
    saved = json.loads((out / "train_metrics.json").read_text())
    assert saved["global_step"] == 10


def test_checkpoint_rebuilds_model_from_itself(trained):
    loaded = load_run(trained["ckpt"])
    assert loaded.module.net["autoencoder"].vocab_size == loaded.tokenizer.vocab_size
    assert loaded.info["seq_len"] == 32
    raw = torch.load(trained["ckpt"], map_location="cpu", weights_only=True)
    for key, value in loaded.module.state_dict().items():
        assert torch.equal(value, raw["state_dict"][key])


@pytest.mark.parametrize("sampler,extra", [("ode", []), ("sde", ["sampler.gamma=1.5"]), ("heun", [])])
def test_sample_writes_samples_and_metrics(trained, tmp_path, sampler, extra):
    cfg = sample_cfg(trained["ckpt"], tmp_path, f"sampler={sampler}", *extra)
    metrics, objects = sample_entry.run(cfg)
    rows = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(len(r["token_ids"]) == 32 for r in rows)
    assert rows[0]["sampler"]["name"] == sampler and "seed" in rows[0] and isinstance(rows[0]["text"], str)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("nfe", "wall_time_s", "tokens_per_s", "unigram_entropy", "distinct_1", "distinct_2", "repetition_4"):
        assert key in saved, key
    assert saved["nfe"] == (3 if sampler == "heun" else 2)
    assert saved["reference/heldout"]["num_samples"] == 2


def test_sampling_is_seeded_and_batch_size_invariant(trained, tmp_path):
    a, _ = sample_entry.run(sample_cfg(trained["ckpt"], tmp_path / "a", "sampler=sde", "num_samples=4", "batch_size=4"))
    b, _ = sample_entry.run(sample_cfg(trained["ckpt"], tmp_path / "b", "sampler=sde", "num_samples=4", "batch_size=1"))
    ids_a = [json.loads(x)["token_ids"] for x in (tmp_path / "a" / "samples.jsonl").read_text().splitlines()]
    ids_b = [json.loads(x)["token_ids"] for x in (tmp_path / "b" / "samples.jsonl").read_text().splitlines()]
    assert ids_a == ids_b


def test_interrupted_run_resumes_from_last_checkpoint(trained, tmp_path, cache_dir):
    out = tmp_path / "resume"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "last.ckpt").write_bytes((trained["dir"] / "checkpoints" / "last.ckpt").read_bytes())
    cfg = compose_config("train", tiny_train_overrides(out, cache_dir) + ["trainer.max_steps=12"])
    metrics, objects = train_entry.run(cfg)
    assert objects["trainer"].global_step == 12  # continued from step 10, not from 0


def test_all_loggers_at_once_receive_metrics_and_sample_texts(tmp_path, cache_dir):
    out = tmp_path / "many"
    cfg = compose_config("train", tiny_train_overrides(out, cache_dir) + ["logger=many", "trainer.max_steps=5"])
    train_entry.run(cfg)
    assert "val/flow_loss" in (out / "csv" / "metrics.csv").read_text()
    events = list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert events, "TensorBoard wrote no event file"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(events[0].parent), size_guidance={"tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    assert "val/flow_loss" in tags["scalars"]
    assert any(tag.startswith("samples/ode_K2") for tag in tags["tensors"]), tags["tensors"]  # the text table
    assert list((out / "wandb").glob("offline-run-*")), "wandb (offline) wrote no run folder"
    import wandb

    assert wandb.run is None, "the training run's wandb run is still open: the next run would log into it"


def test_per_k_validation_logs_few_step_quality(tmp_path, cache_dir):
    out = tmp_path / "perk"
    cfg = compose_config("train", tiny_train_overrides(out, cache_dir) + [
        "callbacks.per_k.every_n_validations=1", "callbacks.per_k.steps=[1,2]", "callbacks.per_k.num_samples=2",
        "evaluation@callbacks.per_k.evaluator=diversity", "trainer.max_steps=5"])
    metrics, _ = train_entry.run(cfg)
    for k in (1, 2):
        assert f"val/entropy_K{k}" in metrics and f"val/self_bleu_K{k}" in metrics
    assert "val/entropy_K2" in (out / "csv" / "metrics.csv").read_text()


def test_diagnostics_callback_logs_documented_keys_to_csv(trained):
    header = (trained["dir"] / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    for key in ("diag/clean_readout_acc", "diag/p_m0", "diag/flip_K4", "diag/tube_pred_K16", "diag/tube_tail_K8",
                "diag/dabi_residual_ce_f1", "diag/dabi_boundary_ce_f1", "diag/alignment_cos2",
                "diag/row_space_residual"):
        assert key in header, key
    assert list((trained["dir"] / "diagnostics").glob("step*_dabi_vs_f.png"))


@pytest.mark.parametrize("sampler,extra,cci", [("ode", [], 0.0), ("commit", ["sampler.threshold=0.0"], 1.0)])
def test_sampling_diagnostics_record_the_trajectory_and_cci(trained, tmp_path, sampler, extra, cci):
    cfg = sample_cfg(trained["ckpt"], tmp_path, f"sampler={sampler}", "sampler.steps=3", *extra)
    metrics, _ = sample_entry.run(cfg)
    assert metrics["diag/cci"] == pytest.approx(cci)  # threshold 0 commits everything at the first step
    curve = metrics["trajectory"]
    assert [row["step"] for row in curve] == [0, 1, 2] and curve[0]["decode_change"] is None
    assert all(0.0 <= row["decode_change"] <= 1.0 for row in curve[1:])
    assert (tmp_path / "trajectory.png").is_file()


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_diffusion_path_trains_and_samples(tmp_path, cache_dir, prediction):
    out = tmp_path / prediction
    cfg = compose_config("train", tiny_train_overrides(out, cache_dir) + ["path=vp", f"path.prediction={prediction}",
                                                                         "trainer.max_steps=3"])
    _, objs = train_entry.run(cfg)
    metrics, _ = sample_entry.run(sample_cfg(objs["checkpoint"], tmp_path / "s", "sampler=sde"))
    assert metrics["nfe"] == 2 and metrics["num_samples"] == 2


def test_checkpoint_from_another_vocabulary_is_refused(trained, tmp_path, cache_dir):
    from textflow.errors import CheckpointError

    cfg = compose_config("train", tiny_train_overrides(tmp_path / "other", cache_dir) + [
        f"ckpt_path={trained['ckpt']}", "data.tokenizer.vocab_size=400"])
    with pytest.raises(CheckpointError, match="was trained with another vocabulary"):
        train_entry.run(cfg)
