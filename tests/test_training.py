"""The training package (docs/architecture.md): one shared base for the three stages' modules, one
optimizer config, one vocabulary check, and stages that refuse command-line overrides they would ignore."""

from __future__ import annotations

import os
import subprocess
import sys
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

import train as train_entry
from conftest import CONF, ROOT, compose_config, tiny_train_overrides
from textflow.checkpoint import build_autoencoder, build_module, make_run_info
from textflow.cli import guarded
from textflow.errors import CheckpointError, ConfigError
from textflow.training.resume import resume_checkpoint
from textflow.training import ARTwinModule, AutoencoderModule, DistillModule, LatentFlowModule, WarmupCosine
from textflow.training.ar_twin import AR_TWIN, ar_twin_stage
from textflow.training.autoencoder import AUTOENCODER, autoencoder_stage, read_autoencoder
from textflow.training.base import (STAGE_KEYS, StageKeys, TrainingModule, check_same_vocabulary,
                                    command_line_overrides)
from textflow.training.distill import DISTILL, distill_stage
from textflow.training.flow import FLOW, flow_stage
from textflow.training.rng import training_step_seed

SEQ_LEN, VOCAB = 32, 50


class Tiny(TrainingModule):
    def __init__(self, **factories):
        super().__init__(**factories)
        self.trained = nn.Linear(3, 2)
        self.frozen = nn.Linear(2, 2).requires_grad_(False)


# ------------------------------------------------------------------------------------------ the shared base
@pytest.mark.parametrize("module", [LatentFlowModule, AutoencoderModule, DistillModule, ARTwinModule])
def test_every_stage_module_inherits_optimizers_run_info_and_seeding_from_the_base(module):
    assert issubclass(module, TrainingModule)
    for hook in ("configure_optimizers", "on_train_batch_start"):
        assert getattr(module, hook) is getattr(TrainingModule, hook), hook
    if module is not DistillModule:  # distillation adds its students to the same checkpoint entry
        assert module.on_save_checkpoint is TrainingModule.on_save_checkpoint
        assert module.on_load_checkpoint is TrainingModule.on_load_checkpoint


def test_configure_optimizers_builds_the_factories_on_the_trained_parameters():
    plain = Tiny(optimizer=partial(torch.optim.AdamW, lr=0.1))
    optimizer = plain.configure_optimizers()
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["lr"] == 0.1
    assert [id(p) for p in optimizer.param_groups[0]["params"]] == [id(p) for p in plain.trained.parameters()]
    scheduled = Tiny(optimizer=partial(torch.optim.SGD, lr=1.0), scheduler=WarmupCosine(warmup_steps=4, total_steps=8))
    out = scheduled.configure_optimizers()
    assert isinstance(out["optimizer"], torch.optim.SGD) and out["lr_scheduler"]["interval"] == "step"
    assert out["optimizer"].param_groups[0]["lr"] == pytest.approx(0.25)  # warm-up step 0 of 4


def test_run_info_is_stored_under_textflow_and_restored():
    module = Tiny(optimizer=torch.optim.SGD)
    module.run_info = {"kind": "flow", "vocab_size": 7}
    checkpoint: dict = {}
    module.on_save_checkpoint(checkpoint)
    assert checkpoint["textflow"] == {"kind": "flow", "vocab_size": 7}
    checkpoint["textflow"]["vocab_size"] = 8  # a copy: the module's run info is not aliased
    assert module.run_info["vocab_size"] == 7
    fresh = Tiny(optimizer=torch.optim.SGD)
    fresh.on_load_checkpoint(checkpoint)
    assert fresh.run_info == {"kind": "flow", "vocab_size": 8}


def test_each_training_batch_reseeds_the_global_rng_from_the_step():
    module = Tiny(optimizer=torch.optim.SGD)
    module.trainer = SimpleNamespace(global_step=5, global_rank=0, accumulate_grad_batches=1)
    torch.manual_seed(1234)
    module.on_train_batch_start(None, 0)
    drawn = torch.randn(4)
    expected = torch.randn(4, generator=torch.Generator().manual_seed(training_step_seed(5)))
    assert torch.equal(drawn, expected)


# ------------------------------------------------------------------------------------------ one optimizer config
def _targets(name: str) -> list[Path]:
    return sorted(p.relative_to(CONF) for p in CONF.rglob("*.yaml") if f"_target_: {name}" in p.read_text())


def test_one_optimizer_and_one_schedule_config(tmp_path, cache_dir):
    assert _targets("torch.optim.AdamW") == [Path("optimizer/adamw.yaml")]
    assert _targets("textflow.training.WarmupCosine") == [Path("optimizer/schedule/warmup_cosine.yaml")]
    base = tiny_train_overrides(tmp_path, cache_dir)
    flow = compose_config("train", base).module
    ae = compose_config("train", base + ["stage=autoencoder"]).stage
    distill = compose_config("train", base + ["stage=distill"]).stage
    for opt in (flow.optimizer, ae.optimizer):
        assert (opt.lr, list(opt.betas), opt.weight_decay) == (1e-3, [0.9, 0.98], 0.01)
    assert (distill.optimizer.lr, list(distill.optimizer.betas), distill.optimizer.weight_decay) == (2e-4, [0.9, 0.999],
                                                                                                      0.0)
    assert (flow.scheduler.warmup_steps, ae.scheduler.warmup_steps) == (2, 100)  # debug=fast sets the flow's
    assert "scheduler" not in distill
    assert compose_config("train", base + ["stage=distill", "stage.optimizer.lr=1e-5"]).stage.optimizer.lr == 1e-5


@pytest.mark.parametrize("use_ema", [True, False])
def test_distillation_starts_from_the_teachers_ema_or_raw_weights(use_ema, tmp_path, cache_dir):
    cfg = compose_config("train", tiny_train_overrides(tmp_path, cache_dir))
    teacher = build_module(cfg, vocab_size=VOCAB, seq_len=SEQ_LEN)
    with torch.no_grad():
        for p in teacher.net.parameters():
            p.add_(1.0)  # the raw weights move away from the EMA copy
    student = DistillModule(teacher=teacher, teacher_ckpt="t.ckpt", export_path=str(tmp_path / "d.ckpt"),
                            start_steps=4, optimizer=torch.optim.SGD, use_ema=use_ema)
    source = teacher.ema.module if use_ema else teacher.net
    for name, value in source["backbone"].state_dict().items():
        assert torch.equal(student.teacher_backbone.state_dict()[name], value), name
        assert torch.equal(student.student.state_dict()[name], value), name
    for name, value in source["autoencoder"].state_dict().items():
        assert torch.equal(student.autoencoder.state_dict()[name], value), name
    assert [id(p) for p in student.trained_parameters()] == [id(p) for p in student.student.parameters()]


# ------------------------------------------------------------------------------------------ unused overrides
REFUSED = [
    (["stage=distill", "teacher_ckpt=t.ckpt", "backbone=dit_base"],
     "stage=distill does not use backbone (the student copies the teacher's architecture); remove backbone=dit_base"),
    (["stage=distill", "teacher_ckpt=t.ckpt", "module.ema_decay=0.5"],
     "stage=distill does not use module (the teacher comes from teacher_ckpt and the student trains with "
     "stage.optimizer); remove module.ema_decay=0.5"),
    (["stage=distill", "teacher_ckpt=t.ckpt", "autoencoder=vae"],
     "stage=distill does not use autoencoder (the student keeps the teacher's frozen autoencoder); "
     "remove autoencoder=vae"),
    (["stage=distill", "teacher_ckpt=t.ckpt", "path=vp"],
     "stage=distill does not use path (the student copies the teacher's architecture); remove path=vp"),
    (["stage=distill", "teacher_ckpt=t.ckpt", "autoencoder_ckpt=a.ckpt"],
     "stage=distill does not use autoencoder_ckpt (the teacher's autoencoder comes from teacher_ckpt); "
     "remove autoencoder_ckpt=a.ckpt"),
    (["stage=distill", "teacher_ckpt=t.ckpt", "time@module.train_time=uniform"],
     "stage=distill does not use module (the teacher comes from teacher_ckpt and the student trains with "
     "stage.optimizer); remove time@module.train_time=uniform"),
    (["stage=autoencoder", "path=vp"],
     "stage=autoencoder does not use path (stage one trains the autoencoder alone; stage=flow autoencoder_ckpt=... "
     "trains the flow on it); remove path=vp"),
    (["stage=autoencoder", "backbone.width=64"],
     "stage=autoencoder does not use backbone (stage one trains the autoencoder alone; stage=flow "
     "autoencoder_ckpt=... trains the flow on it); remove backbone.width=64"),
    (["stage=autoencoder", "module.optimizer.lr=1e-4"],
     "stage=autoencoder does not use module (its optimizer and LR schedule are stage.optimizer and "
     "stage.scheduler); remove module.optimizer.lr=1e-4"),
    (["stage=autoencoder", "autoencoder_ckpt=a.ckpt"],
     "stage=autoencoder does not use autoencoder_ckpt (it trains a new autoencoder; pass autoencoder_ckpt to "
     "stage=flow); remove autoencoder_ckpt=a.ckpt"),
    (["teacher_ckpt=t.ckpt"],
     "stage=flow does not use teacher_ckpt (only stage=distill and stage=flow_map read it); remove teacher_ckpt=t.ckpt"),
]


@pytest.mark.parametrize("extra,message", REFUSED, ids=[" ".join(e) for e, _ in REFUSED])
def test_a_stage_refuses_an_override_it_would_ignore_in_one_line(extra, message, tmp_path, cache_dir, capsys):
    out = tmp_path / "run"
    cfg = compose_config("train", tiny_train_overrides(out, cache_dir) + extra)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        guarded(train_entry.run, cfg)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {message}"]
    assert not (out / "checkpoints").exists()


@pytest.mark.parametrize("stage,extra", [
    ("flow", ["autoencoder=vae", "backbone.width=64", "path=vp", "module.ema_decay=0.9", "autoencoder_ckpt=a.ckpt",
              "optimizer@module.optimizer=adamw", "time@module.train_time=uniform"]),
    ("autoencoder", ["autoencoder=vae", "autoencoder.latent_dim=8", "stage.optimizer.lr=1e-4",
                     "stage.scheduler.warmup_steps=3"]),
    ("distill", ["teacher_ckpt=t.ckpt", "stage.optimizer.lr=1e-5", "stage.use_ema=false", "stage.min_steps=2"]),
])
def test_keys_a_stage_reads_and_keys_every_stage_reads_are_allowed(stage, extra, tmp_path, cache_dir):
    shared = ["seed=3", "trainer.max_steps=4", "callbacks.samples=null", "logger=none", "data.batch_size=4",
              "tokenizer@data.tokenizer=bpe_tiny", "ckpt_path=null", "resume=false"]
    cfg = compose_config("train", tiny_train_overrides(tmp_path, cache_dir) + [f"stage={stage}"] + shared + extra)
    {"flow": FLOW, "autoencoder": AUTOENCODER, "distill": DISTILL}[stage].refuse_unread_overrides(cfg)


@pytest.mark.parametrize("stage", ["autoencoder", "distill"])
def test_what_an_experiment_sets_is_not_a_command_line_override(stage, tmp_path, cache_dir):
    """README: ``train.py experiment=quickstart stage=distill teacher_ckpt=CKPT``; the experiment sets the
    autoencoder, the backbone and the module for the flow stage, and the other stages run it unchanged."""
    extra = ["teacher_ckpt=t.ckpt"] if stage == "distill" else []
    cfg = compose_config("train", ["experiment=quickstart", f"stage={stage}", *extra, f"dirs.output_dir={tmp_path}",
                                   f"dirs.cache_dir={cache_dir}"])
    assert cfg.module.scheduler.warmup_steps == 100  # set by the experiment, as is the one-hot latent space
    assert cfg.autoencoder._target_ == "textflow.autoencoders.OneHotAutoencoder"
    {"autoencoder": AUTOENCODER, "distill": DISTILL}[stage].refuse_unread_overrides(cfg)


def test_overrides_come_from_the_running_hydra_job_under_hydra_main(tmp_path):
    """``@hydra.main`` hands the task a config without ``hydra``; the overrides come from HydraConfig."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    cfg = compose_config("train", ["stage=distill", "path=vp", f"dirs.output_dir={tmp_path}"])
    task = cfg.copy()
    with open_dict(task):
        del task["hydra"]
    assert command_line_overrides(task) == []  # library use: no Hydra job, no command line
    HydraConfig.instance().set_config(cfg)
    try:
        assert command_line_overrides(task) == ["stage=distill", "path=vp", f"dirs.output_dir={tmp_path}"]
        with pytest.raises(ConfigError, match="stage=distill does not use path"):
            DISTILL.refuse_unread_overrides(task)
    finally:
        HydraConfig.instance().cfg = None


def test_the_train_cli_refuses_an_unused_group_with_exit_status_2(tmp_path, cache_dir):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "WANDB_MODE": "offline"}
    proc = subprocess.run([sys.executable, "train.py", *tiny_train_overrides(tmp_path / "run", cache_dir),
                           "stage=distill", "teacher_ckpt=t.ckpt", "backbone=dit_base"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [
        "error: stage=distill does not use backbone (the student copies the teacher's architecture); "
        "remove backbone=dit_base"]


def test_every_stage_splits_the_stage_keys_and_a_bad_declaration_is_refused():
    for stage in (FLOW, AUTOENCODER, DISTILL, AR_TWIN):
        assert set(stage.reads) | set(stage.unread) == set(STAGE_KEYS)
    assert FLOW.reads == ("autoencoder", "backbone", "path", "module", "autoencoder_ckpt")
    assert AUTOENCODER.reads == ("autoencoder",) and DISTILL.reads == ("teacher_ckpt",)
    with pytest.raises(ValueError, match="must split"):
        StageKeys("broken", reads=("backbone",))


# ------------------------------------------------------------------------------------------ one vocabulary check
class FakeTokenizer:
    """Another vocabulary: a tokenizer JSON and size no real run has."""

    def __init__(self, name: str, vocab_size: int):
        self.name, self.vocab_size = name, vocab_size

    def to_json(self) -> str:
        return f'{{"tokenizer": "{self.name}"}}'


def mismatch(key: str, path, theirs: int, ours: int) -> str:
    return (f"{key}={str(path)!r} was trained with another vocabulary (vocab_size={theirs}) than this run's data "
            f"(vocab_size={ours}); use the data/tokenizer config {key} was trained with")


def test_check_same_vocabulary_compares_tokenizer_and_size():
    ours = FakeTokenizer("a", VOCAB)
    info = {"tokenizer": ours.to_json(), "vocab_size": VOCAB}
    check_same_vocabulary("ckpt_path", "x.ckpt", info, tokenizer_json=ours.to_json(), vocab_size=VOCAB)
    check_same_vocabulary("autoencoder_ckpt", "x.ckpt", {"tokenizer": None, "vocab_size": None}, tokenizer_json=None,
                          vocab_size=None)  # continuous data (digits): no tokenizer on either side
    with pytest.raises(CheckpointError, match="another vocabulary"):
        check_same_vocabulary("ckpt_path", "x.ckpt", info, tokenizer_json=FakeTokenizer("b", VOCAB).to_json(),
                              vocab_size=VOCAB)
    with pytest.raises(CheckpointError) as err:
        check_same_vocabulary("teacher_ckpt", "x.ckpt", info, tokenizer_json=ours.to_json(), vocab_size=60)
    assert str(err.value) == mismatch("teacher_ckpt", "x.ckpt", VOCAB, 60)


@pytest.fixture(scope="module")
def written(tmp_path_factory, cache_dir):
    """A flow and an autoencoder checkpoint (untrained weights) written with the fixture data's tokenizer."""
    folder = tmp_path_factory.mktemp("vocab")
    cfg = compose_config("train", tiny_train_overrides(folder, cache_dir))
    tokenizer = instantiate(cfg.data).setup_tokenizer()
    vocab = tokenizer.vocab_size
    info = dict(tokenizer_json=tokenizer.to_json(), vocab_size=vocab, seq_len=SEQ_LEN)
    flow = build_module(cfg, vocab_size=vocab, seq_len=SEQ_LEN)
    torch.save({"state_dict": flow.state_dict(), "textflow": make_run_info(cfg, **info)}, folder / "flow.ckpt")
    ae = build_autoencoder(cfg, vocab_size=vocab)
    torch.save({"state_dict": {f"autoencoder.{k}": v for k, v in ae.state_dict().items()},
                "textflow": make_run_info(cfg, **info, kind="autoencoder")}, folder / "ae.ckpt")
    return SimpleNamespace(flow=folder / "flow.ckpt", ae=folder / "ae.ckpt", tokenizer=tokenizer)


def test_the_three_checkpoint_readers_share_the_vocabulary_check(written, tmp_path, cache_dir):
    other, vocab = FakeTokenizer("b", 60), written.tokenizer.vocab_size
    flow, ae = written.flow, written.ae
    cfg = compose_config("train", tiny_train_overrides(tmp_path, cache_dir) + [f"ckpt_path={flow}"])
    run_info = make_run_info(cfg, tokenizer_json=other.to_json(), vocab_size=60, seq_len=SEQ_LEN)
    with pytest.raises(CheckpointError) as err:
        resume_checkpoint(cfg, run_info)
    assert str(err.value) == mismatch("ckpt_path", flow, vocab, 60)
    with pytest.raises(CheckpointError) as err:
        read_autoencoder(str(ae), tokenizer=other, expected=cfg.autoencoder)
    assert str(err.value) == mismatch("autoencoder_ckpt", ae, vocab, 60)
    with pytest.raises(CheckpointError) as err:
        flow_stage(cfg, tokenizer=other, seq_len=SEQ_LEN, autoencoder_ckpt=str(ae))
    assert str(err.value) == mismatch("autoencoder_ckpt", ae, vocab, 60)
    distill_cfg = compose_config("train", tiny_train_overrides(tmp_path, cache_dir) + ["stage=distill"])
    with pytest.raises(CheckpointError) as err:
        distill_stage(distill_cfg, tokenizer=other, seq_len=SEQ_LEN, teacher_ckpt=str(flow), optimizer=torch.optim.SGD)
    assert str(err.value) == mismatch("teacher_ckpt", flow, vocab, 60)
    # the run's own tokenizer passes every reader
    same = written.tokenizer
    assert resume_checkpoint(cfg, {**run_info, "tokenizer": same.to_json(), "vocab_size": vocab}) == str(flow)
    assert read_autoencoder(str(ae), tokenizer=same, expected=cfg.autoencoder)[1]
    assert distill_stage(distill_cfg, tokenizer=same, seq_len=SEQ_LEN, teacher_ckpt=str(flow),
                         optimizer=torch.optim.SGD).rounds == [16, 8, 4, 2, 1]


def test_the_vocabulary_message_is_written_once():
    sources = [p.relative_to(ROOT) for p in (ROOT / "textflow").rglob("*.py")
               if "was trained with another vocabulary" in p.read_text()]
    assert sources == [Path("textflow/checkpoint/files.py")]  # below training: sample.py ar_twin= uses it


def test_stage_builders_are_what_conf_stage_names(tmp_path, cache_dir):
    builders = {"flow": flow_stage, "autoencoder": autoencoder_stage, "distill": distill_stage,
                "ar_twin": ar_twin_stage}
    for stage, builder in builders.items():
        cfg = compose_config("train", tiny_train_overrides(tmp_path, cache_dir) + [f"stage={stage}"])
        assert instantiate(cfg.stage).func is builder
    assert not (ROOT / "textflow" / "training" / "stages.py").exists()
