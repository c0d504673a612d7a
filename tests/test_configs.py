"""Every option of every config group composes, and its component instantiates (docs/architecture.md,
"Config groups")."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from lightning.pytorch.callbacks import Callback

from conftest import CONF, ROOT, compose_config, tiny_train_overrides
from textflow.checkpoint import build_module
from textflow.cli import instantiate_dict
from textflow.time.argmax import argmax_accuracy
from textflow.training import LatentFlowModule, WarmupCosine


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def base(tmp_path: Path, cache: Path) -> list[str]:
    return tiny_train_overrides(tmp_path, cache)


@pytest.mark.parametrize("option", options("backbone"))
def test_backbones(option, tmp_path, cache_dir):
    cfg = compose_config("train", base(tmp_path, cache_dir) + [f"backbone={option}"])
    net = instantiate(cfg.backbone, latent_dim=8, max_len=16)
    assert net.latent_dim == 8


@pytest.mark.parametrize("option", options("path"))
def test_paths(option, tmp_path, cache_dir):
    cfg = compose_config("train", base(tmp_path, cache_dir) + [f"path={option}"])
    module = build_module(cfg, vocab_size=50, seq_len=16)
    assert module.path.prior_scale() > 0


@pytest.mark.parametrize("group,option", [(g, o) for g in ("autoencoder", "module") for o in options(g)])
def test_model_groups(group, option, tmp_path, cache_dir):
    cfg = compose_config("train", base(tmp_path, cache_dir) + [f"{group}={option}"])
    module = build_module(cfg, vocab_size=50, seq_len=16)
    autoencoder = module.net["autoencoder"]
    assert autoencoder.vocab_size == (50 if autoencoder.readout_kind.decodes_tokens else None)


@pytest.mark.parametrize("option", options("time"))
def test_time_distributions(option, tmp_path, cache_dir):
    """Every time option gives a grid from 0 to 1 on the module that trains with it (``flm`` describes a one-hot
    latent space and reads its knobs from it)."""
    extra = ["autoencoder=onehot"] if option == "flm" else []
    cfg = compose_config("train", base(tmp_path, cache_dir) + [f"time@module.train_time={option}", *extra])
    grid = build_module(cfg, vocab_size=100, seq_len=int(cfg.data.seq_len)).train_time.grid(4)
    assert float(grid[0]) == 0.0 and float(grid[-1]) == 1.0 and bool((grid.diff() > 0).all())


@pytest.mark.parametrize("option", options("sampler"))
def test_samplers(option, tmp_path):
    cfg = compose_config("sample", ["ckpt_path=x.ckpt", f"sampler={option}", f"dirs.output_dir={tmp_path}"])
    sampler = instantiate(cfg.sampler)
    assert sampler.name == option and sampler.steps >= 1


@pytest.mark.parametrize("option", options("logger"))
def test_loggers(option, tmp_path, cache_dir):
    cfg = compose_config("train", base(tmp_path, cache_dir) + [f"logger={option}"])
    loggers = instantiate_dict(cfg.get("logger"))
    assert len(loggers) == {"none": 0, "many": 3}.get(option, 1)


@pytest.mark.parametrize("option", options("callbacks"))
def test_callbacks(option, tmp_path, cache_dir):
    cfg = compose_config("train", base(tmp_path, cache_dir) + [f"callbacks={option}"])
    callbacks = instantiate_dict(cfg.get("callbacks"))
    assert all(isinstance(cb, Callback) for cb in callbacks)
    named = sorted(type(cb).__name__ for cb in callbacks)
    assert named == ([] if option == "none" else sorted(
        ["ModelCheckpoint", "LearningRateMonitor", "TQDMProgressBar", "SampleTextLogger", "PerKValidation",
         "ReadoutDiagnostics"]))


@pytest.mark.parametrize("option", options("optimizer"))
def test_optimizers(option, tmp_path, cache_dir):
    cfg = compose_config("train", base(tmp_path, cache_dir) + [f"optimizer@module.optimizer={option}"])
    module = build_module(cfg, vocab_size=50, seq_len=16)
    out = module.configure_optimizers()
    assert type(out["optimizer"]).__name__ == cfg.module.optimizer._target_.rsplit(".", 1)[1]
    assert out["optimizer"].defaults["lr"] == cfg.module.optimizer.lr and out["lr_scheduler"]["interval"] == "step"


@pytest.mark.parametrize("option", ["adamw", "muon"])
def test_adamw_is_fused_by_default_at_full_precision_and_steps_like_the_loop(option, tmp_path, cache_dir):
    import torch

    params = {}
    for fused in ("auto", None):
        overrides = base(tmp_path, cache_dir) + [f"optimizer@module.optimizer={option}"]
        loop = [] if fused == "auto" else ["module.optimizer.fused=null"]
        cfg = compose_config("train", overrides + loop)
        torch.manual_seed(0)
        module = build_module(cfg, vocab_size=50, seq_len=16)
        optimizer = module.configure_optimizers()["optimizer"]
        adamw = [g for g in optimizer.param_groups if g.get("kind", "adamw") == "adamw"]
        assert adamw and all(g["fused"] is (True if fused == "auto" else None) for g in adamw)
        for p in module.net.parameters():
            p.grad = torch.ones_like(p)
        optimizer.step()
        params[fused] = torch.cat([p.detach().flatten() for p in module.net.parameters()])
        # under mixed precision (Lightning refuses a fused optimizer with clipping there) auto is the loop
        mixed = module.make_optimizer(mixed_precision=True)
        assert all(not g["fused"] for g in mixed.param_groups if g.get("kind", "adamw") == "adamw")
    torch.testing.assert_close(params["auto"], params[None], rtol=1e-6, atol=1e-7)


def test_a_bad_fused_value_names_the_choices():
    from textflow.errors import ConfigError
    from textflow.training.optim import fused_choice

    assert fused_choice("auto", mixed_precision=False) is True
    assert fused_choice(None, mixed_precision=False) is None
    with pytest.raises(ConfigError, match=r"fused='yes' is invalid; choose one of auto, true, false, null"):
        fused_choice("yes", mixed_precision=False)


@pytest.mark.parametrize("option", sorted(p.stem for p in (CONF / "optimizer" / "schedule").glob("*.yaml")))
def test_schedules(option, tmp_path, cache_dir):
    cfg = compose_config("train", base(tmp_path, cache_dir) + [f"optimizer/schedule@module.scheduler={option}"])
    schedule = instantiate(cfg.module.scheduler)
    assert isinstance(schedule, WarmupCosine) and schedule.total_steps == cfg.trainer.max_steps


@pytest.mark.parametrize("option", [o for o in options("trainer") if o in ("default", "cpu", "ddp_cpu")])
def test_cpu_trainers(option, tmp_path, cache_dir):
    cfg = compose_config("train", base(tmp_path, cache_dir) + [f"trainer={option}"])
    assert instantiate(cfg.trainer, logger=False).max_steps == 10


@pytest.mark.parametrize("option", [o for o in options("trainer") if o in ("gpu", "ddp")])
def test_gpu_trainers_compose(option, tmp_path, cache_dir):
    cfg = compose_config("train", base(tmp_path, cache_dir) + [f"trainer={option}"])
    assert cfg.trainer.accelerator == "gpu" and cfg.trainer.precision == "bf16-mixed"


@pytest.mark.parametrize("option", options("data"))
def test_data_options_compose(option, tmp_path, cache_dir):
    extra = {"local": ["data.corpus.train_glob=x/*.txt"], "hf": ["data.corpus.name=wikitext"]}.get(option, [])
    cfg = compose_config("train", base(tmp_path, cache_dir) + [f"data={option}"] + extra)
    if option == "digits":  # images: no corpus, no tokenizer
        assert instantiate(cfg.data).setup_tokenizer() is None
        return
    assert cfg.data.corpus._target_.startswith("textflow.data")
    assert cfg.data.tokenizer._target_.startswith("textflow.data")


@pytest.mark.parametrize("option", options("experiment"))
def test_experiments_compose(option, tmp_path, cache_dir):
    cfg = compose_config("train", [f"experiment={option}", f"dirs.root_dir={ROOT}", f"dirs.cache_dir={cache_dir}",
                                   f"dirs.output_dir={tmp_path}"])
    module = build_module(cfg, vocab_size=100, seq_len=int(cfg.data.seq_len))
    autoencoder, backbone = module.net["autoencoder"], module.net["backbone"]
    assert isinstance(module, LatentFlowModule)
    assert cfg.autoencoder._target_.rsplit(".", 1)[1] == type(autoencoder).__name__
    # the one-hot latent's width is the vocabulary (it has no latent_dim key)
    assert backbone.latent_dim == autoencoder.latent_dim == cfg.autoencoder.get("latent_dim", autoencoder.vocab_size)
    assert autoencoder.vocab_size == (100 if autoencoder.readout_kind.decodes_tokens else None)
    for stage in ("autoencoder", "distill", "ar_twin"):  # every stage composes with the experiment
        staged = compose_config("train", [f"experiment={option}", f"stage={stage}", f"dirs.root_dir={ROOT}",
                                          f"dirs.cache_dir={cache_dir}", f"dirs.output_dir={tmp_path}"])
        assert instantiate(staged.stage).func.__name__ == f"{stage}_stage"


@pytest.mark.parametrize("option", options("experiment"))
def test_every_experiment_takes_a_pretrained_tokenizer(option, tmp_path, cache_dir):
    """A researcher's own tokenizer (GPT-2's, or a pretrained one) has no ``vocab_size`` key to interpolate:
    every experiment on text resolves with each (the one-hot module's build at another vocabulary: below)."""
    dirs = [f"dirs.root_dir={ROOT}", f"dirs.cache_dir={cache_dir}"]
    plain = compose_config("train", [f"experiment={option}", *dirs])
    if "tokenizer" not in plain.data:
        pytest.skip(f"experiment={option} reads images, not text")
    for tokenizer in ("gpt2", "pretrained"):  # hydra's own keys resolve only in a run: left out
        extra = ["data.tokenizer.name_or_path=some/folder"] if tokenizer == "pretrained" else []
        cfg = compose_config("train", [f"experiment={option}", f"tokenizer@data.tokenizer={tokenizer}",
                                       *extra, *dirs, f"dirs.output_dir={tmp_path}"])
        ours = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
        OmegaConf.to_container(ours, resolve=True)


@pytest.mark.parametrize("vocab", [300, 50257])
def test_one_hot_validation_times_sit_at_the_same_argmax_accuracies_at_any_vocabulary(vocab, tmp_path,
                                                                                       cache_dir):
    cfg = compose_config("train", base(tmp_path, cache_dir) + ["experiment=onehot", "backbone=dit_tiny"])
    module = build_module(cfg, vocab_size=vocab, seq_len=int(cfg.data.seq_len))
    accuracy = argmax_accuracy(torch.tensor(module.val_times), vocab_size=vocab, snr=1.0)
    assert torch.allclose(accuracy, torch.tensor([0.1, 0.3, 0.5, 0.7, 0.9], dtype=torch.float64), atol=2e-3)


@pytest.mark.parametrize("option", options("tokenizer"))
def test_tokenizer_options(option, tmp_path, cache_dir):
    extra = ["data.tokenizer.name_or_path=some/folder"] if option == "pretrained" else []
    cfg = compose_config("train", base(tmp_path, cache_dir) + [f"tokenizer@data.tokenizer={option}"] + extra)
    spec = instantiate(cfg.data.tokenizer)
    assert type(spec).__module__ == "textflow.data.tokenizers" and spec.fingerprint()


def test_every_sampler_config_lists_the_guidance_scales():
    """`sampler.sc_scale` and `sampler.cfg_scale` are visible (and documented) in every sampler's file."""
    for path in sorted((CONF / "sampler").glob("*.yaml")):
        keys = [line.split(":", 1)[0] for line in path.read_text().splitlines() if not line.startswith((" ", "#"))]
        assert "sc_scale" in keys and "cfg_scale" in keys, path.name
