"""Two-stage training through the real entry points: stage=autoencoder, then stage=flow on its
checkpoint, then sample.py; plus the smooth image control end to end and the hand-off's errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import sample as sample_entry
import train as train_entry
from conftest import compose_config, tiny_train_overrides
from textflow.diagnostics import report as diagnose_entry
from textflow.checkpoint import load_run, read_checkpoint
from textflow.errors import CheckpointError, ConfigError
from textflow.readouts import AutoregressiveDiagnostics

pytest.importorskip("sklearn")  # data=digits


def overrides(out, cache_dir, extra) -> list[str]:
    """The tiny test overrides; an experiment that brings its own data (digits) keeps it."""
    base = tiny_train_overrides(out, cache_dir)
    if "experiment=smooth" in extra:
        base.remove("data=fixture")
    return base + list(extra)


def train(tmp_path_factory, cache_dir, name: str, *extra: str):
    out = tmp_path_factory.mktemp(name)
    cfg = compose_config("train", overrides(out, cache_dir, extra))
    return train_entry.run(cfg)[1]["checkpoint"]


@pytest.fixture(scope="module")
def vae_stages(tmp_path_factory, cache_dir):
    ae = train(tmp_path_factory, cache_dir, "ae", "stage=autoencoder", "autoencoder=vae", "autoencoder.width=32",
               "autoencoder.heads=2")
    flow = train(tmp_path_factory, cache_dir, "flow", "autoencoder=vae", "autoencoder.width=32", "autoencoder.heads=2",
                 f"autoencoder_ckpt={ae}")
    return ae, flow


def test_flow_stage_loads_the_autoencoder_and_its_latent_statistics(vae_stages, tmp_path, cache_dir):
    ae_ckpt, flow_ckpt = vae_stages
    assert read_checkpoint(ae_ckpt)["textflow"]["kind"] == "autoencoder"
    ae_weights = {k[len("autoencoder."):]: v for k, v in read_checkpoint(ae_ckpt)["state_dict"].items()}
    loaded = load_run(flow_ckpt)
    wrapped = loaded.module.net["autoencoder"]
    for key, value in wrapped.inner.state_dict().items():
        assert torch.equal(value, ae_weights[key]), key
    # the stored statistics are those of the frozen encoder over the training batches
    from hydra.utils import instantiate

    cfg = compose_config("train", tiny_train_overrides(tmp_path, cache_dir))
    datamodule = instantiate(cfg.data)
    datamodule.setup_tokenizer()
    datamodule.setup("fit")
    ordered = torch.utils.data.DataLoader(datamodule.train_set, batch_size=cfg.data.batch_size)
    first = [b for _, b in zip(range(64), ordered)]  # fit_statistics' default: the first 64 batches in order
    z = torch.cat([wrapped.inner.encode(b).flatten(0, 1) for b in first]).double()
    assert torch.allclose(wrapped.mean.double(), z.mean(0), atol=1e-4)
    assert torch.allclose(wrapped.std.double(), z.std(0, unbiased=False), atol=1e-3)
    assert bool(wrapped.fitted) and bool(loaded.module.ema.module["autoencoder"].fitted)


def test_sample_from_a_two_stage_flow(vae_stages, tmp_path):
    cfg = compose_config("sample", [f"ckpt_path={vae_stages[1]}", f"dirs.output_dir={tmp_path}", "num_samples=2",
                                    "batch_size=2", "sampler=sde", "sampler.steps=2", "evaluation=diversity"])
    metrics, _ = sample_entry.run(cfg)
    assert metrics["nfe"] == 2 and (tmp_path / "samples.jsonl").is_file()


def test_sampling_an_autoencoder_checkpoint_is_a_clear_error(vae_stages, tmp_path):
    cfg = compose_config("sample", [f"ckpt_path={vae_stages[0]}", f"dirs.output_dir={tmp_path}"])
    with pytest.raises(CheckpointError, match="holds an autoencoder alone.*stage=flow autoencoder_ckpt="):
        sample_entry.run(cfg)


def test_autoencoder_checkpoint_with_another_latent_dim_is_refused(vae_stages, tmp_path, cache_dir):
    cfg = compose_config("train", tiny_train_overrides(tmp_path, cache_dir) + [
        "autoencoder=vae", "autoencoder.latent_dim=8", f"autoencoder_ckpt={vae_stages[0]}"])
    with pytest.raises(CheckpointError, match="latent_dim=16.*latent_dim=8"):
        train_entry.run(cfg)


def test_autoencoder_checkpoint_with_another_vocabulary_is_refused(vae_stages, tmp_path, cache_dir):
    cfg = compose_config("train", tiny_train_overrides(tmp_path, cache_dir) + [
        "autoencoder=vae", "tokenizer@data.tokenizer=bpe", "data.tokenizer.vocab_size=300",
        f"autoencoder_ckpt={vae_stages[0]}"])
    with pytest.raises(CheckpointError, match="another vocabulary"):
        train_entry.run(cfg)


def test_a_flow_checkpoint_is_not_an_autoencoder_checkpoint(vae_stages, tmp_path, cache_dir):
    cfg = compose_config("train", tiny_train_overrides(tmp_path, cache_dir) + [
        "autoencoder=vae", f"autoencoder_ckpt={vae_stages[1]}"])
    with pytest.raises(CheckpointError, match="is a 'flow' checkpoint"):
        train_entry.run(cfg)


def test_ar_autoencoder_trains_jointly_and_samples(tmp_path_factory, cache_dir, tmp_path):
    ckpt = train(tmp_path_factory, cache_dir, "ar", "autoencoder=ar", "autoencoder.width=32", "autoencoder.heads=2")
    cfg = compose_config("sample", [f"ckpt_path={ckpt}", f"dirs.output_dir={tmp_path}", "num_samples=2",
                                    "batch_size=2", "sampler=ode", "sampler.steps=2", "evaluation=diversity"])
    metrics, objects = sample_entry.run(cfg)
    assert objects["generation"].ids.shape == (2, 32)
    assert metrics["diag/cci"] == 0.0 and metrics["diag/cci_readout"] == pytest.approx(31 / 32)
    ablated = compose_config("sample", [f"ckpt_path={ckpt}", f"dirs.output_dir={tmp_path / 'soft'}", "num_samples=2",
                                        "batch_size=2", "sampler=ode", "sampler.steps=2", "evaluation=diversity",
                                        "readout_feed=soft", "reference=false"])
    metrics, objects = sample_entry.run(ablated)
    assert metrics["diag/cci_readout"] == 0.0 and objects["generation"].ids.shape == (2, 32)
    assert metrics["readout_feed"] == "soft"  # what was run is in its metrics (the sweep report's column)
    # the training callback ran the commit ablation on the AR readout
    header = (Path(ckpt).parent.parent / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    for key in ("diag/cci_readout", "diag/ablation_clean_token_acc", "diag/ablation_clean_soft_acc",
                "diag/ablation_K4_soft_acc"):
        assert key in header, key
    # and the one-command report covers it
    result = diagnose_entry.diagnose(str(ckpt), blocks=2, steps=(4,))
    assert isinstance(result, AutoregressiveDiagnostics) and result.as_dict()["autoregressive"]
    assert result.cci_readout == pytest.approx(31 / 32)
    assert set(result.ablation) == {"clean", "K4"} and set(result.ablation["K4"]) == {"token", "soft"}
    assert "Commit ablation" in result.markdown()


def test_commit_ablation_needs_an_autoregressive_readout(vae_stages, tmp_path):
    cfg = compose_config("sample", [f"ckpt_path={vae_stages[1]}", f"dirs.output_dir={tmp_path}",
                                    "readout_feed=soft", "evaluation=diversity"])
    with pytest.raises(ConfigError, match="readout_feed='soft' needs an autoregressive readout.*TransformerVAE"):
        sample_entry.run(cfg)


@pytest.fixture(scope="module")
def smooth_flow(tmp_path_factory, cache_dir):
    # data.seq_len interpolates the autoencoder's latent_tokens, as in conf/data/digits.yaml
    common = ("experiment=smooth", "debug=fast", "data.seq_len=${autoencoder.latent_tokens}", "trainer.max_time=null")
    ae = train(tmp_path_factory, cache_dir, "smooth_ae", *common, "stage=autoencoder")
    return train(tmp_path_factory, cache_dir, "smooth_flow", *common, f"autoencoder_ckpt={ae}")


def test_smooth_flow_training_logs_the_mse_dabi(smooth_flow):
    logged = (smooth_flow.parent.parent / "csv" / "metrics.csv").read_text()
    for key in ("val/recon_mse", "diag/clean_recon_mse", "diag/dabi_residual_mse_K4_f1"):
        assert key in logged, key


def test_smooth_diagnose_report(smooth_flow, tmp_path):
    from textflow.diagnostics.cli import main as diagnose_main

    diagnose_main([str(smooth_flow), "--out", str(tmp_path), "--blocks", "16", "--steps", "2", "4"])
    result = json.loads((tmp_path / "diagnostics.json").read_text())
    assert result["continuous"] and set(result["dabi_by_K"]) == {"2", "4"}
    assert all(r > 0 for r in result["dabi_by_K"]["2"]["ratio"])
    assert (tmp_path / "dabi_vs_f.png").is_file() and "continuous decoder" in (tmp_path / "diagnostics.md").read_text()


@pytest.mark.parametrize("sampler", ["ode", "sde"])
def test_smooth_control_samples_and_reports_continuous_metrics(smooth_flow, tmp_path, sampler):
    cfg = compose_config("sample", [f"ckpt_path={smooth_flow}", f"dirs.output_dir={tmp_path}", "num_samples=8",
                                    "batch_size=8", f"sampler={sampler}", "sampler.steps=2"])
    metrics, objects = sample_entry.run(cfg)
    assert objects["images"].shape == (8, 64)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("frechet", "nn_distance", "coverage_distance"):
        assert saved[key] >= 0 and key in saved["reference/train"]
    assert (tmp_path / "samples.png").is_file()


def test_smooth_flow_with_the_wrong_sequence_length_is_a_clear_error(tmp_path_factory, cache_dir, tmp_path):
    cfg = compose_config("train", overrides(tmp_path, cache_dir, ["experiment=smooth", "debug=fast"]))
    with pytest.raises(ConfigError, match="data.seq_len=32 but the autoencoder makes 4 latent positions"):
        train_entry.run(cfg)
