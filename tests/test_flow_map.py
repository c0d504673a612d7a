"""Flow-map students: the two-time network, the jump plumbing of the samplers, the objective, and
train.py stage=flow_map -> sample.py sampler=flow_map end to end (docs/samplers.md, "Flow-map students")."""

from __future__ import annotations

import json

import pytest
import torch

import sample as sample_entry
import train as train_entry
from conftest import compose_config, tiny_train_overrides
from test_samplers import GaussianDenoiser, GaussianFlowMap
from textflow.autoencoders.embed import EmbeddingAutoencoder
from textflow.backbones.dit import DiT
from textflow.backbones.flow_map import FlowMapNetwork
from textflow.denoiser import FlowDenoiser
from textflow.errors import CheckpointError, ConfigError
from textflow.objectives.distillation import two_step_target
from textflow.objectives.flow_map import check_flow_map_knobs, draw_intervals, flow_map_loss
from textflow.paths import LinearPath, VPPath
from textflow.samplers import Sampler
from textflow.samplers.flow_map import flow_map_network, sample_flow_map
from textflow.samplers.ode import sample_ode
from textflow.samplers.sde import sample_sde


def tiny_dit(**kw) -> DiT:
    torch.manual_seed(0)
    dit = DiT(latent_dim=6, max_len=8, width=32, depth=2, heads=2, **kw)
    for p in dit.parameters():  # adaLN-Zero starts at the identity: give every layer a value
        torch.nn.init.normal_(p, std=0.05)
    return dit


def tiny_embedding() -> EmbeddingAutoencoder:
    torch.manual_seed(1)
    return EmbeddingAutoencoder(vocab_size=7, latent_dim=6)


def test_an_untrained_flow_map_is_its_teacher_at_every_pair_of_times():
    dit = tiny_dit()
    net = FlowMapNetwork(backbone=dit)
    z = torch.randn(3, 5, 6, generator=torch.Generator().manual_seed(1))
    s, t = torch.tensor([0.0, 0.3, 0.9]), torch.tensor([0.5, 0.3, 1.0])
    assert torch.equal(net(z, s, t), dit(z, s))
    net.gap_mlp[-1].weight.data.normal_()  # a trained second time changes the output
    assert not torch.allclose(net(z, s, t), dit(z, s))


def test_a_flow_map_of_a_self_conditioned_teacher_is_refused():
    with pytest.raises(ConfigError, match="self-conditioned teacher"):
        FlowMapNetwork(backbone=tiny_dit(self_condition=True))


@pytest.mark.parametrize("steps", [1, 3, 8])
def test_an_untrained_student_samples_exactly_as_the_teacher_ode(steps):
    path = LinearPath()
    dit = tiny_dit()
    ae = tiny_embedding()
    teacher = FlowDenoiser(backbone=dit, path=path, autoencoder=ae)
    student = FlowDenoiser(backbone=flow_map_network(dit), path=path, autoencoder=ae)
    z0 = torch.randn(2, 5, 6, generator=torch.Generator().manual_seed(2))
    grid = torch.linspace(0, 1, steps + 1)
    out = sample_flow_map(student, z0, grid)
    assert torch.equal(out.latents, sample_ode(teacher, z0, grid).latents) and out.nfe == steps


@pytest.mark.parametrize("path", [LinearPath(), VPPath(prediction="v")], ids=["linear", "vp"])
@pytest.mark.parametrize("steps", [1, 2, 5])
def test_jumps_of_an_exact_flow_map_land_on_the_exact_ode_solution(path, steps):
    z0 = torch.randn(4, 3, 1, generator=torch.Generator().manual_seed(0))
    fine = sample_ode(GaussianDenoiser(path), z0, torch.linspace(0, 1, 2001)).latents
    jumped = sample_flow_map(GaussianFlowMap(path), z0, torch.linspace(0, 1, steps + 1))
    assert torch.allclose(jumped.latents, fine, atol=2e-3) and jumped.nfe == steps


def test_churn_between_jumps_is_seeded_and_gamma_zero_draws_no_noise():
    path, grid = LinearPath(), torch.linspace(0, 1, 5)
    z0 = torch.randn(2, 3, 1, generator=torch.Generator().manual_seed(0))
    plain = sample_flow_map(GaussianFlowMap(path), z0, grid, gamma=0.0, generator=None).latents
    assert torch.equal(plain, sample_flow_map(GaussianFlowMap(path), z0, grid).latents)
    a = sample_flow_map(GaussianFlowMap(path), z0, grid, gamma=1.0, generator=torch.Generator().manual_seed(5))
    b = sample_flow_map(GaussianFlowMap(path), z0, grid, gamma=1.0, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a.latents, b.latents) and not torch.equal(a.latents, plain)
    assert a.extras["injected_noise"] == pytest.approx(3 * 0.25)  # alpha = 1 - gamma h on all but the last step
    # sde's loop: on a flow map the churn step jumps from t_b to t_next
    ref = sample_sde(GaussianFlowMap(path), z0, grid, gamma=1.0, generator=torch.Generator().manual_seed(5))
    assert torch.equal(ref.latents, a.latents)


def test_the_semigroup_target_of_an_exact_flow_map_is_its_own_jump():
    fm = GaussianFlowMap(LinearPath())
    z_s = torch.randn(3, 4, 1, generator=torch.Generator().manual_seed(3))
    s, t = torch.tensor([0.0, 0.25, 0.5]), torch.tensor([1.0, 0.5, 0.75])
    assert torch.allclose(two_step_target(fm, z_s, s, t), fm(z_s, s, t_next=t), atol=1e-5)


def test_intervals_are_dyadic_or_diagonal():
    s, t, level, diagonal = draw_intervals(4096, levels=3, anchor_fraction=0.25,
                                           generator=torch.Generator().manual_seed(0))
    assert torch.equal(s[diagonal], t[diagonal]) and 0.2 < diagonal.float().mean() < 0.3
    width = t[~diagonal] - s[~diagonal]
    assert torch.allclose(width, 2.0 ** -level[~diagonal].float())
    assert torch.allclose(s[~diagonal] / width, torch.round(s[~diagonal] / width))  # on the level's grid
    assert set(level[~diagonal].tolist()) == {0, 1, 2, 3} and float(t.max()) <= 1.0
    with pytest.raises(ConfigError, match="stage.levels=0"):
        check_flow_map_knobs(levels=0, anchor_fraction=0.25)
    with pytest.raises(ConfigError, match="stage.anchor_fraction=1.5"):
        check_flow_map_knobs(levels=3, anchor_fraction=1.5)


def test_the_loss_trains_the_student_and_its_targets_carry_no_gradient():
    path = LinearPath()
    ae, dit = tiny_embedding(), tiny_dit()
    teacher = FlowDenoiser(backbone=dit, path=path, autoencoder=ae)
    student = FlowDenoiser(backbone=flow_map_network(dit), path=path, autoencoder=ae)
    x = torch.randn(16, 5, 6, generator=torch.Generator().manual_seed(0))
    noise = torch.randn(16, 5, 6, generator=torch.Generator().manual_seed(1))
    loss = flow_map_loss(student, teacher, x=x, noise=noise, levels=3, anchor_fraction=0.25,
                         generator=torch.Generator().manual_seed(2))
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is None for p in dit.parameters())
    assert student.backbone.gap_mlp[-1].weight.grad is not None


@pytest.fixture(scope="module")
def flow_mapped(tmp_path_factory, cache_dir):
    teacher_dir = tmp_path_factory.mktemp("fm-teacher")
    _, objs = train_entry.run(compose_config("train", tiny_train_overrides(teacher_dir, cache_dir)))
    out = tmp_path_factory.mktemp("flow-map")
    cfg = compose_config("train", tiny_train_overrides(out, cache_dir) + [
        "stage=flow_map", f"teacher_ckpt={objs['checkpoint']}", "stage.levels=2", "stage.export_every=2",
        "trainer.max_steps=3", "callbacks.samples=null"])
    return objs["checkpoint"], train_entry.run(cfg)[1]


def test_the_stage_exports_the_teacher_with_one_student(flow_mapped):
    teacher_ckpt, objects = flow_mapped
    ckpt = objects["checkpoint"]
    assert ckpt.name == "flow_map.ckpt" and objects["trainer"].global_step == 3
    raw = torch.load(ckpt, map_location="cpu", weights_only=True)
    teacher = torch.load(teacher_ckpt, map_location="cpu", weights_only=True)
    assert raw["textflow"]["flow_map_training"]["levels"] == 2
    student = raw["textflow"]["flow_map"]
    assert any(k.startswith("gap_mlp.") for k in student) and any(k.startswith("backbone.") for k in student)
    assert all(torch.equal(raw["state_dict"][k], v) for k, v in teacher["state_dict"].items())
    assert not torch.equal(student["gap_mlp.2.weight"], torch.zeros_like(student["gap_mlp.2.weight"]))


def test_sample_py_runs_the_student_at_any_k_and_the_teacher_from_the_same_file(flow_mapped, tmp_path):
    ckpt = flow_mapped[1]["checkpoint"]
    for steps, gamma in ((1, 0.0), (3, 0.5)):
        out = tmp_path / f"K{steps}"
        cfg = compose_config("sample", [f"ckpt_path={ckpt}", f"dirs.output_dir={out}", "sampler=flow_map",
                                        f"sampler.steps={steps}", f"sampler.gamma={gamma}", "num_samples=2",
                                        "batch_size=2", "evaluation=diversity"])
        metrics, _ = sample_entry.run(cfg)
        assert metrics["nfe"] == steps
        assert json.loads((out / "metrics.json").read_text())["sampler"]["name"] == "flow_map"
    cfg = compose_config("sample", [f"ckpt_path={ckpt}", f"dirs.output_dir={tmp_path / 'ode'}", "sampler=ode",
                                    "sampler.steps=2", "num_samples=1", "evaluation=diversity"])
    assert sample_entry.run(cfg)[0]["nfe"] == 2


def test_a_checkpoint_without_a_flow_map_is_refused_in_one_line(flow_mapped, tmp_path):
    cfg = compose_config("sample", [f"ckpt_path={flow_mapped[0]}", f"dirs.output_dir={tmp_path}", "sampler=flow_map",
                                    "num_samples=1", "evaluation=diversity"])
    with pytest.raises(CheckpointError, match="holds no flow-map student.*stage=flow_map"):
        sample_entry.run(cfg)


def test_prompts_are_refused_by_the_flow_map_sampler(flow_mapped):
    from textflow.checkpoint import load_run

    loaded = load_run(flow_mapped[1]["checkpoint"])
    sampler = Sampler(name="flow_map", steps=2)
    den = sampler.denoiser(loaded)
    from textflow.conditioning import Condition

    ids = torch.zeros(1, 4, dtype=torch.long)
    mask = torch.tensor([[True, False, False, False]])
    cond = Condition(mask=mask, ids=ids, latents=den.embed(ids))
    with pytest.raises(ConfigError, match="sampler=flow_map does not support prompts"):
        sampler(den, torch.zeros(1, 4, den.backbone.latent_dim), condition=cond)


def test_exported_folder_samples_the_flow_map_identically(flow_mapped, tmp_path):
    from textflow.export.__main__ import main as export_main

    ckpt = flow_mapped[1]["checkpoint"]
    folder = tmp_path / "exported"
    export_main([str(ckpt), str(folder)])
    assert json.loads((folder / "textflow.json").read_text())["flow_map"] is True
    rows = {}
    for name, source in (("ckpt", ckpt), ("folder", folder)):
        out = tmp_path / name
        cfg = compose_config("sample", [f"ckpt_path={source}", f"dirs.output_dir={out}", "sampler=flow_map",
                                        "sampler.steps=2", "num_samples=2", "batch_size=2", "evaluation=diversity",
                                        "reference=false"])
        sample_entry.run(cfg)
        rows[name] = [json.loads(line)["token_ids"] for line in (out / "samples.jsonl").read_text().splitlines()]
    assert rows["ckpt"] == rows["folder"]


def test_fidelity_scores_the_teacher_ode_against_itself_as_exact_and_a_student_as_less(flow_mapped, tmp_path):
    from textflow.checkpoint import load_run
    from textflow.sampling.fidelity import fidelity_rows, main

    loaded = load_run(flow_mapped[1]["checkpoint"])
    same = fidelity_rows(loaded, sampler="ode", steps=[8], reference_steps=8, num_samples=3, batch_size=2)
    assert same[0]["latent_mse"] == 0.0 and same[0]["token_agreement"] == 1.0
    rows = fidelity_rows(loaded, sampler="flow_map", steps=[1, 2], reference_steps=8, num_samples=3, batch_size=2)
    assert [r["steps"] for r in rows] == [1, 2] and all(r["latent_mse"] > 0 for r in rows)
    main([str(flow_mapped[1]["checkpoint"]), "--sampler", "flow_map", "--steps", "1", "--reference-steps", "4",
          "--num-samples", "2", "--out", str(tmp_path)])
    assert json.loads((tmp_path / "fidelity.json").read_text())[0]["sampler"] == "flow_map"
    assert "token agreement" in (tmp_path / "fidelity.md").read_text()


def test_fidelity_measures_what_the_cpu_linear_kernel_changes(flow_mapped, monkeypatch):
    """The same sampler against itself on PyTorch's linears: oneDNN (forced onto the tiny model's small
    matmuls) moves latents by float32 rounding only, and the default reference is bit-identical."""
    from textflow.checkpoint import load_run
    from textflow.kernels import linear as kl
    from textflow.sampling.fidelity import fidelity_rows

    if not kl.onednn_available():
        pytest.skip("this torch build has no oneDNN fused linear")
    monkeypatch.setattr(kl, "MIN_MACS", 0)
    loaded = load_run(flow_mapped[1]["checkpoint"])
    (row,) = fidelity_rows(loaded, sampler="ode", steps=[4], reference_steps=None, num_samples=3, batch_size=2,
                           reference_cpu_linear="aten")
    assert row["reference"] == "ode (aten linears) K=4"
    assert 0 < row["latent_mse"] < 1e-8 * row["reference_latent_sq"] and row["token_agreement"] > 0.9
    (same,) = fidelity_rows(loaded, sampler="ode", steps=[4], reference_steps=None, num_samples=3, batch_size=2)
    assert same["latent_mse"] == 0.0


def test_fidelity_compares_two_sampler_specs_at_the_same_k(flow_mapped, tmp_path):
    from textflow.checkpoint import load_run
    from textflow.errors import ConfigError
    from textflow.sampling.fidelity import fidelity_rows, main

    loaded = load_run(flow_mapped[1]["checkpoint"])
    (same,) = fidelity_rows(loaded, sampler="adaptive:gamma=0", reference="ode", reference_steps=None, steps=[3],
                            num_samples=3, batch_size=2)  # gamma = 0 is the ODE bit for bit
    assert same["reference"] == "ode K=3" and same["latent_mse"] == 0.0 and same["sequences_identical"] == 1.0
    (churned,) = fidelity_rows(loaded, sampler="adaptive:gamma=1.5:levels=2", reference="adaptive:gamma=1.5:levels=null",
                               reference_steps=None, steps=[3], num_samples=3, batch_size=2)
    assert churned["reference"] == "adaptive:gamma=1.5:levels=null K=3" and churned["latent_mse"] > 0
    main([str(flow_mapped[1]["checkpoint"]), "--sampler", "sde:gamma=0.5", "--reference", "sde:gamma=0.5",
          "--reference-steps", "same", "--steps", "2", "--num-samples", "2", "--out", str(tmp_path)])
    (row,) = json.loads((tmp_path / "fidelity.json").read_text())
    assert row["token_agreement"] == 1.0 and row["reference"] == "sde:gamma=0.5 K=2"  # same noise, same samples
    assert (tmp_path / "fidelity.png").stat().st_size > 0
    with pytest.raises(ConfigError, match="--reference-steps=0"):
        fidelity_rows(loaded, sampler="ode", steps=[1], reference_steps=0, num_samples=1, batch_size=1)
    with pytest.raises(SystemExit):
        main([str(flow_mapped[1]["checkpoint"]), "--reference-steps", "half"])


def test_the_export_refuses_a_non_finite_student(flow_mapped, tmp_path):
    from textflow.callbacks.finite import DivergedError
    from textflow.training.teacher import TeacherExport

    exporter = TeacherExport(teacher_ckpt=str(flow_mapped[0]), export_path=str(tmp_path / "flow_map.ckpt"))
    with pytest.raises(DivergedError, match=r"flow_map\.w"):
        exporter.write(flow_map={"w": torch.tensor([1.0, float("nan")])})
    assert not (tmp_path / "flow_map.ckpt").exists()
    exporter.write(flow_map={"w": torch.ones(2)})
    assert (tmp_path / "flow_map.ckpt").exists()
