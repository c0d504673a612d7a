"""Progressive distillation: the target, the rounds, and train.py stage=distill end to end."""

from __future__ import annotations

import json

import pytest
import torch

import sample as sample_entry
import train as train_entry
from conftest import compose_config, tiny_train_overrides
from test_samplers import GaussianDenoiser
from textflow.objectives.distillation import two_step_target
from textflow.training.distill import halving_rounds
from textflow.errors import CheckpointError, ConfigError
from textflow.paths import LinearPath, VPPath


@pytest.mark.parametrize("path", [LinearPath(), VPPath(prediction="v")], ids=["linear", "vp"])
def test_one_student_step_with_the_target_lands_where_two_teacher_steps_land(path):
    teacher = GaussianDenoiser(path)
    z_s = torch.randn(4, 5, 1, generator=torch.Generator().manual_seed(0))
    t_s, t_t = torch.tensor([0.0, 0.25, 0.5, 0.5]), torch.tensor([0.25, 0.5, 0.75, 1.0])
    target = two_step_target(teacher, z_s, t_s, t_t)
    for b in range(4):
        z, t0, t1 = z_s[b:b + 1], t_s[b:b + 1], t_t[b:b + 1]
        tm = (t0 + t1) / 2
        z_mid = z + (tm - t0) * path.velocity(teacher(z, t0), z, t0)  # teacher: two Euler sub-steps by hand
        x_mid = teacher(z_mid, tm)
        if t1.item() == 1.0:  # last interval: samplers return x_hat there, and so must the target
            assert torch.allclose(target[b:b + 1], x_mid, atol=1e-5)
            continue
        landing = z_mid + (t1 - tm) * path.velocity(x_mid, z_mid, tm)
        one_step = z + (t1 - t0) * path.velocity(target[b:b + 1], z, t0)
        assert torch.allclose(one_step, landing, atol=1e-5)


def test_linear_target_formula_of_the_module_docstring():
    teacher = GaussianDenoiser(LinearPath())
    z_s = torch.randn(2, 3, 1, generator=torch.Generator().manual_seed(1))
    t_s, t_t = torch.tensor([0.2, 0.4]), torch.tensor([0.4, 0.6])
    path, tm = teacher.path, (t_s + t_t) / 2
    z_mid = z_s + (tm - t_s).view(-1, 1, 1) * path.velocity(teacher(z_s, t_s), z_s, t_s)
    z_t = z_mid + (t_t - tm).view(-1, 1, 1) * path.velocity(teacher(z_mid, tm), z_mid, tm)
    expected = z_s + ((1 - t_s) / (t_t - t_s)).view(-1, 1, 1) * (z_t - z_s)
    assert torch.allclose(two_step_target(teacher, z_s, t_s, t_t), expected, atol=1e-5)


def test_rounds_halve_down_to_the_minimum():
    assert halving_rounds(32, 1) == [16, 8, 4, 2, 1]
    assert halving_rounds(32, 4) == [16, 8, 4]
    with pytest.raises(ConfigError, match="start_steps=12"):
        halving_rounds(12, 1)


@pytest.fixture(scope="module")
def distilled(tmp_path_factory, cache_dir):
    teacher_dir = tmp_path_factory.mktemp("teacher")
    _, objs = train_entry.run(compose_config("train", tiny_train_overrides(teacher_dir, cache_dir)))
    out = tmp_path_factory.mktemp("distill")
    cfg = compose_config("train", tiny_train_overrides(out, cache_dir) + [
        "stage=distill", f"teacher_ckpt={objs['checkpoint']}", "stage.start_steps=8", "stage.min_steps=2",
        "stage.steps_per_round=3", "trainer.max_steps=100", "callbacks.samples=null"])
    metrics, objects = train_entry.run(cfg)
    return objects


def test_distill_stage_exports_one_student_per_round(distilled):
    ckpt = distilled["checkpoint"]
    assert ckpt.name == "distilled.ckpt"
    raw = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert sorted(raw["textflow"]["students"]) == ["2", "4"]
    assert distilled["trainer"].global_step == 6  # rounds 8 -> 4 and 4 -> 2, three steps each, then it stops
    # each round's student is different from the teacher and from the other round's student
    s4, s2 = raw["textflow"]["students"]["4"], raw["textflow"]["students"]["2"]
    assert any(not torch.equal(s4[k], s2[k]) for k in s4)


def test_student_sampler_uses_the_student_for_its_k_and_refuses_others(distilled, tmp_path):
    ckpt = distilled["checkpoint"]
    cfg = compose_config("sample", [f"ckpt_path={ckpt}", f"dirs.output_dir={tmp_path}", "sampler=student",
                                    "sampler.steps=2", "num_samples=2", "batch_size=2", "evaluation=diversity"])
    metrics, _ = sample_entry.run(cfg)
    assert metrics["nfe"] == 2 and json.loads((tmp_path / "metrics.json").read_text())["sampler"]["name"] == "student"
    cfg = compose_config("sample", [f"ckpt_path={ckpt}", f"dirs.output_dir={tmp_path}", "sampler=student",
                                    "sampler.steps=8", "num_samples=1", "evaluation=diversity"])
    with pytest.raises(CheckpointError, match="no student was distilled for sampler.steps=8.*steps: 2, 4"):
        sample_entry.run(cfg)
    # the teacher's samplers still work from the same file
    cfg = compose_config("sample", [f"ckpt_path={ckpt}", f"dirs.output_dir={tmp_path / 'ode'}", "sampler=ode",
                                    "sampler.steps=2", "num_samples=1", "evaluation=diversity"])
    assert sample_entry.run(cfg)[0]["nfe"] == 2


@pytest.fixture(scope="module")
def conditional_distilled(tmp_path_factory, cache_dir):
    """A conditional, self-conditioned teacher distilled for one round (4 -> 2)."""
    teacher_dir = tmp_path_factory.mktemp("cond-teacher")
    extra = ["condition@module.condition=masks", "module.condition.prob=1.0", "module.condition.drop_prob=0.0",
             "backbone.self_condition=true", "module.self_cond_prob=0.5"]
    _, objs = train_entry.run(compose_config("train", tiny_train_overrides(teacher_dir, cache_dir) + extra))
    out = tmp_path_factory.mktemp("cond-distill")
    cfg = compose_config("train", tiny_train_overrides(out, cache_dir) + [
        "stage=distill", f"teacher_ckpt={objs['checkpoint']}", "stage.start_steps=4", "stage.min_steps=2",
        "stage.steps_per_round=2", "trainer.max_steps=100", "callbacks.samples=null"])
    return train_entry.run(cfg)[1]


def test_conditional_teacher_distills_on_its_masks_and_the_loss_ignores_given_positions(conditional_distilled):
    module = conditional_distilled["trainer"].lightning_module
    assert module.condition is not None and module.condition.prob == 1.0
    ids = torch.randint(0, module.autoencoder.vocab_size, (4, 8), generator=torch.Generator().manual_seed(0))
    calls = []
    original = module.student.forward

    def spy(z, t, *args, **kwargs):
        calls.append((z.detach().clone(), t.detach().clone()))
        return original(z, t, *args, **kwargs)

    module.student.forward = spy
    try:
        loss = module._loss(ids, generator=torch.Generator().manual_seed(3))
    finally:
        del module.student.forward
    assert torch.isfinite(loss)
    z, t = calls[-1]  # the student's own step
    given = t == 1.0  # per-token time 1 exactly on the given positions (every row is conditional here)
    assert t.dim() == 2 and bool(given.any(1).all()) and bool((~given).any(1).all())
    clean = module.autoencoder.encode(ids)
    assert torch.equal(z[given], clean[given])
    # the masks come from the generator, not the global RNG: the same generator state, the same loss
    torch.manual_seed(123)
    assert torch.equal(loss, module._loss(ids, generator=torch.Generator().manual_seed(3)))


def test_a_student_of_a_conditional_teacher_follows_a_prompt(conditional_distilled, tmp_path):
    ckpt = conditional_distilled["checkpoint"]
    cfg = compose_config("sample", [f"ckpt_path={ckpt}", f"dirs.output_dir={tmp_path}", "sampler=student",
                                    "sampler.steps=2", "num_samples=2", "batch_size=2", "evaluation=diversity",
                                    "prompt=the king", "reference=false"])
    metrics, objects = sample_entry.run(cfg)
    rows = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    prompt_ids = objects["loaded"].tokenizer.encode("the king")
    assert all(r["token_ids"][:len(prompt_ids)] == prompt_ids for r in rows)
    assert "continuation/conditional" in metrics and metrics["nfe"] == 2
