"""Muon on the hidden matrices + AdamW on the rest (textflow.training.MuonWithAdamW,
conf/optimizer/muon.yaml; docs/architecture.md "Config groups"), as ELF trains (arXiv 2606.30705):
the split rule, the update of each side, the LR schedule, the state round trip, and a real run that
trains, checkpoints and resumes bit for bit with ``optimizer@module.optimizer=muon``."""

from __future__ import annotations

import copy
import functools
import io

import pytest
import torch
from torch import nn

import train as train_entry
from conftest import compose_config, tiny_train_overrides
from test_resume import Interrupted, Recorder, train_with
from textflow.autoencoders import EmbeddingAutoencoder
from textflow.backbones import DiT
from textflow.checkpoint.files import checkpoint_tensors, nonfinite_tensors, read_checkpoint
from textflow.errors import ConfigError
from textflow.training import MuonWithAdamW, TrainingModule, WarmupCosine
from textflow.training import muon as muon_update
from textflow.training.optim import is_hidden_matrix

DEPTH = 2
HIDDEN = [f"net.backbone.blocks.{i}.{m}.weight" for i in range(DEPTH)
          for m in ("attn.qkv", "attn.proj", "mlp.0", "mlp.2", "ada")]


class Tiny(TrainingModule):
    """A flow-shaped module: embedding autoencoder (linear readout) + tiny DiT, plus a frozen copy
    that must not be trained."""

    def __init__(self, optimizer):
        super().__init__(optimizer=optimizer)
        self.net = nn.ModuleDict({
            "autoencoder": EmbeddingAutoencoder(vocab_size=11, latent_dim=8, readout="linear"),
            "backbone": DiT(latent_dim=8, max_len=6, width=16, depth=DEPTH, heads=2, mlp_ratio=2.0)})
        self.frozen = copy.deepcopy(self.net["backbone"]).requires_grad_(False)

    def trained_parameters(self):
        return [p for p in self.net.parameters() if p.requires_grad]

    def loss(self, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        ids = torch.randint(0, 11, (3, 6), generator=g)
        x = self.net["autoencoder"].encode(ids)
        t = torch.rand(3, generator=g)
        z = t[:, None, None] * x + (1 - t[:, None, None]) * torch.randn(x.shape, generator=g)
        x_hat = self.net["backbone"](z, t)
        logits = self.net["autoencoder"].decode(x + x_hat)
        ce = nn.functional.cross_entropy(logits.flatten(0, 1), ids.flatten())
        return (x_hat - x).pow(2).mean() + ce


def make(seed: int = 0, **knobs) -> tuple[Tiny, MuonWithAdamW]:
    torch.manual_seed(seed)
    module = Tiny(functools.partial(MuonWithAdamW, **knobs))
    return module, module.configure_optimizers()


def train_steps(module, optimizer, steps, *, scheduler=None, start: int = 0):
    for i in range(start, start + steps):
        optimizer.zero_grad()
        module.loss(i).backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()


def test_split_rule_sends_hidden_block_matrices_to_muon_and_the_rest_to_adamw():
    module, opt = make()
    muon, adamw = opt.param_groups
    assert (muon["kind"], adamw["kind"]) == ("muon", "adamw")
    assert muon["param_names"] == HIDDEN  # attention, MLP and per-block adaLN matrices, in model order
    for name in ("net.autoencoder.embedding.weight", "net.autoencoder.readout.weight",
                 "net.backbone.proj_in.weight", "net.backbone.proj_out.weight", "net.backbone.ada_out.weight",
                 "net.backbone.time_mlp.0.weight",
                 "net.backbone.pos", "net.backbone.blocks.0.attn.qkv.bias", "net.autoencoder.readout.bias"):
        assert name in adamw["param_names"], name
    # every trained parameter exactly once, in trained_parameters() order within each side; never the
    # frozen copy
    named = module.named_trained_parameters()
    assert [p for _, p in named] == module.trained_parameters()
    assert sorted(muon["param_names"] + adamw["param_names"]) == sorted(n for n, _ in named)
    assert adamw["param_names"] == [n for n, p in named if n not in HIDDEN]
    assert all(p.ndim == 2 for p in muon["params"])
    assert not any(n.startswith("frozen.") for n in muon["param_names"] + adamw["param_names"])
    assert (muon["lr"], muon["momentum"], adamw["lr"], adamw["betas"]) == (0.02, 0.95, 1e-3, (0.9, 0.98))
    assert not is_hidden_matrix("blocks.0.attn.qkv.bias", torch.zeros(3))
    assert not is_hidden_matrix("autoencoder.embedding.weight", torch.zeros(3, 3))


def test_adamw_still_gets_plain_parameters_in_the_same_order():
    """configure_optimizers is unchanged for AdamW: plain parameters (no names), in trained_parameters()
    order."""
    torch.manual_seed(0)
    module = Tiny(functools.partial(torch.optim.AdamW, lr=1e-3))
    opt = module.configure_optimizers()
    assert len(opt.param_groups) == 1 and "param_names" not in opt.param_groups[0]
    assert opt.param_groups[0]["params"] == module.trained_parameters()


def test_plain_parameters_and_bad_knobs_are_refused():
    module = Tiny(None)
    with pytest.raises(ConfigError, match=r"\(name, parameter\) pairs"):
        MuonWithAdamW(module.trained_parameters())
    with pytest.raises(ConfigError, match="muon_lr"):
        MuonWithAdamW(module.named_trained_parameters(), muon_lr=-1.0)
    with pytest.raises(ConfigError, match=r"muon_ns_dtype='float16'.*auto, bfloat16, float32"):
        MuonWithAdamW(module.named_trained_parameters(), muon_ns_dtype="float16")
    with pytest.raises(ConfigError, match="muon_adjust_lr_fn"):
        MuonWithAdamW(module.named_trained_parameters(), muon_adjust_lr_fn="sqrt")
    with pytest.warns(UserWarning, match="every parameter is trained with AdamW"):
        only = MuonWithAdamW(module.named_trained_parameters(), hidden_pattern="nothing-matches")
    assert [g["kind"] for g in only.param_groups] == ["adamw"]


def test_a_step_is_torch_muon_on_the_hidden_matrices_and_torch_adamw_on_the_rest():
    """With the iteration in bfloat16 (torch's only choice) the update equals torch.optim.Muon's exactly."""
    module, opt = make(muon_ns_dtype="bfloat16")
    reference = copy.deepcopy(module)
    ref_named = dict(reference.named_trained_parameters())
    ref_muon = torch.optim.Muon([ref_named[n] for n in HIDDEN], lr=0.02, momentum=0.95, weight_decay=0.01)
    ref_adamw = torch.optim.AdamW([ref_named[n] for n in opt.param_groups[1]["param_names"]], lr=1e-3,
                                  betas=(0.9, 0.98), weight_decay=0.01)
    before = {n: p.detach().clone() for n, p in module.named_trained_parameters()}
    for i in range(2):
        train_steps(module, opt, 1, start=i)
        ref_muon.zero_grad(), ref_adamw.zero_grad()
        reference.loss(i).backward()
        ref_muon.step(), ref_adamw.step()
    pairs = zip(module.named_trained_parameters(), reference.named_trained_parameters(), strict=True)
    for (n, p), (_, q) in pairs:
        assert torch.equal(p, q), n
    changed = {n for n, p in module.named_trained_parameters() if not torch.equal(p, before[n])}
    assert set(HIDDEN) <= changed  # every Muon matrix moved (adaLN included, though zero-initialised)
    assert {"net.autoencoder.embedding.weight", "net.autoencoder.readout.weight",
            "net.backbone.proj_out.weight"} <= changed
    assert set(opt.state) == {p for g in opt.param_groups for p in g["params"]}  # one state per trained param
    assert all("momentum_buffer" in opt.state[p] for p in opt.param_groups[0]["params"])
    assert all("exp_avg_sq" in opt.state[p] for p in opt.param_groups[1]["params"])


def test_the_iteration_keeps_the_singular_vectors_and_brings_the_singular_values_near_one():
    """In float64 the quintic iteration is exactly a polynomial of X X^T times X: U^T X V is diagonal
    (U, V from the SVD of the input), for wide and tall inputs, and its diagonal sits around 1."""
    g = torch.Generator().manual_seed(0)
    for shape in ((12, 30), (30, 12)):
        matrix = torch.randn(shape, generator=g, dtype=torch.float64)
        matrix[:, 0] *= 50  # a spread-out spectrum
        out = muon_update.orthogonalize(matrix, coefficients=(3.4445, -4.7750, 2.0315), steps=5, eps=1e-7,
                                        dtype=torch.float64)
        u, _, vh = torch.linalg.svd(matrix, full_matrices=False)
        core = u.T @ out @ vh.T
        off = core - torch.diag(torch.diagonal(core))
        assert out.dtype == torch.float64 and out.shape == shape
        assert float(off.abs().max()) < 1e-10
        assert 0.3 < float(torch.diagonal(core).min()) and float(torch.diagonal(core).max()) < 1.6


def test_the_float32_iteration_agrees_with_torch_muon_to_bfloat16_precision():
    """Same update, other dtype: the float32 run differs from torch's bfloat16 one only by bfloat16
    rounding, and its momentum buffers equal torch's exactly (they never see the iteration)."""
    module, opt = make(muon_ns_dtype="float32")
    reference = copy.deepcopy(module)
    ref_named = dict(reference.named_trained_parameters())
    ref_muon = torch.optim.Muon([ref_named[n] for n in HIDDEN], lr=0.02, momentum=0.95, weight_decay=0.01)
    start = {n: p.detach().clone() for n, p in module.named_trained_parameters()}
    named = dict(module.named_trained_parameters())
    g = torch.Generator().manual_seed(1)
    for n, p in named.items():  # random gradients: the adaLN-zero blocks get none from a first loss
        p.grad = torch.randn(p.shape, generator=g)
        ref_named[n].grad = p.grad.clone()
    opt.step()
    ref_muon.step()
    for n in HIDDEN:
        step, ref_step = named[n].detach() - start[n], ref_named[n].detach() - start[n]
        assert not torch.equal(step, ref_step), n  # the dtype did change the arithmetic
        assert float((step - ref_step).norm() / ref_step.norm()) < 2e-2, n
        assert torch.equal(opt.state[named[n]]["momentum_buffer"], ref_muon.state[ref_named[n]]["momentum_buffer"])


def test_without_nesterov_the_float32_iteration_leaves_the_momentum_buffer_alone():
    """The direction is then the buffer itself: the iteration works on a copy, so after the first step
    the buffer is exactly (1 - momentum) * gradient."""
    module, opt = make(muon_ns_dtype="float32", muon_nesterov=False)
    module.loss().backward()
    grads = {p: p.grad.clone() for p in opt.param_groups[0]["params"]}
    opt.step()
    for p, grad in grads.items():
        assert torch.equal(opt.state[p]["momentum_buffer"], torch.zeros_like(grad).lerp_(grad, 1 - 0.95))


def test_auto_picks_bfloat16_only_where_the_device_multiplies_it_natively(monkeypatch):
    cpu = torch.device("cpu")
    assert muon_update.ns_dtype_for("float32", cpu) == torch.float32
    assert muon_update.ns_dtype_for("bfloat16", cpu) == torch.bfloat16
    for native, expected in ((True, torch.bfloat16), (False, torch.float32)):
        monkeypatch.setattr(muon_update, "fast_bfloat16_matmul", lambda device, native=native: native)
        assert muon_update.ns_dtype_for("auto", cpu) == expected
    monkeypatch.undo()
    assert muon_update.fast_bfloat16_matmul(cpu) == bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert muon_update.fast_bfloat16_matmul(torch.device("meta")) is False


def test_the_lr_schedule_scales_both_sides():
    module, opt = make()
    schedule = WarmupCosine(warmup_steps=2, total_steps=6, min_ratio=0.1)
    scheduler = schedule(opt)
    for step in range(7):
        muon, adamw = opt.param_groups
        assert muon["lr"] == pytest.approx(0.02 * schedule.factor(step))
        assert adamw["lr"] == pytest.approx(1e-3 * schedule.factor(step))
        train_steps(module, opt, 1, scheduler=scheduler, start=step)


def test_gradient_clipping_sees_every_trained_parameter():
    module, opt = make()
    module.loss().backward()
    clipped = [p for g in opt.param_groups for p in g["params"]]
    assert {id(p) for p in clipped} == {id(p) for p in module.trained_parameters()}
    torch.nn.utils.clip_grad_norm_(clipped, 1e-3)
    assert float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in clipped]))) <= 1e-3 * 1.0001


def test_state_dict_round_trip_continues_exactly_and_refuses_another_split():
    module, opt = make()
    scheduler = WarmupCosine(warmup_steps=1, total_steps=8)(opt)
    train_steps(module, opt, 3, scheduler=scheduler)
    buffer = io.BytesIO()
    torch.save({"opt": opt.state_dict(), "sched": scheduler.state_dict(), "model": module.state_dict()},
               buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)  # what a Lightning checkpoint holds, loaded safely

    resumed, opt2 = make(seed=1)  # other initial weights: everything comes from the saved state
    resumed.load_state_dict(saved["model"])
    scheduler2 = WarmupCosine(warmup_steps=1, total_steps=8)(opt2)
    opt2.load_state_dict(saved["opt"])
    scheduler2.load_state_dict(saved["sched"])
    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]

    train_steps(module, opt, 3, scheduler=scheduler, start=3)
    train_steps(resumed, opt2, 3, scheduler=scheduler2, start=3)
    for (n, p), (_, q) in zip(module.named_parameters(), resumed.named_parameters(), strict=True):
        assert torch.equal(p, q), n
    a, b = opt.state_dict(), opt2.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for k in a["state"]:
        assert all(torch.equal(a["state"][k][s], b["state"][k][s]) for s in a["state"][k])

    _, other = make(hidden_pattern=r"blocks\.0\.")
    with pytest.raises(ValueError, match="splits the parameters differently"):
        other.load_state_dict(saved["opt"])
    clone = copy.deepcopy(opt2)  # a copy (or unpickled optimizer) rebuilds its inner optimizers
    assert clone.defaults["muon_ns_dtype"] == "auto"
    clone.zero_grad()
    resumed.loss().backward()
    clone.step()


def muon_overrides(out, cache, *extra):
    return tiny_train_overrides(out, cache) + [
        "optimizer@module.optimizer=muon", "trainer.max_steps=6", "trainer.val_check_interval=3",
        "callbacks.model_checkpoint.every_n_train_steps=3", "callbacks.diagnostics.every_n_validations=0",
        "callbacks.samples=null", *extra]


@pytest.fixture(scope="module")
def muon_run(tmp_path_factory, cache_dir):
    out = tmp_path_factory.mktemp("muon")
    cfg = compose_config("train", muon_overrides(out, cache_dir))
    assert cfg.module.optimizer._target_ == "textflow.training.MuonWithAdamW"
    metrics, objects = train_entry.run(cfg)
    return {"dir": out, "metrics": metrics, "objects": objects}


def test_a_muon_run_trains_and_writes_finite_checkpoints(muon_run):
    assert muon_run["objects"]["trainer"].global_step == 6
    final = muon_run["dir"] / "checkpoints" / "final.ckpt"
    ckpt = read_checkpoint(final)  # its config names MuonWithAdamW: allowed by the safe-config check
    assert nonfinite_tensors(checkpoint_tensors(ckpt)) == []
    groups = ckpt["optimizer_states"][0]["param_groups"]
    assert [g["kind"] for g in groups] == ["muon", "adamw"]
    assert all(".backbone.blocks." in n for n in groups[0]["param_names"])
    assert "net.autoencoder.embedding.weight" in groups[1]["param_names"]
    assert all(bool(torch.isfinite(v).all()) for s in ckpt["optimizer_states"][0]["state"].values()
               for v in s.values() if torch.is_tensor(v))


def test_an_interrupted_muon_run_resumes_bit_for_bit(muon_run, tmp_path, cache_dir, monkeypatch):
    """Stop after step 3 (its checkpoint written), rerun the same command: the final weights,
    Muon and AdamW states and schedule equal the uninterrupted run's exactly (tests/test_resume.py)."""
    cfg = compose_config("train", muon_overrides(tmp_path, cache_dir))
    with pytest.raises(Interrupted):
        train_with(monkeypatch, cfg, Recorder(crash_at=3))
    train_with(monkeypatch, cfg, Recorder())
    straight, resumed = (torch.load(d / "checkpoints" / "final.ckpt", map_location="cpu", weights_only=True)
                         for d in (muon_run["dir"], tmp_path))
    assert straight["global_step"] == resumed["global_step"] == 6
    different = [k for k, v in straight["state_dict"].items() if not torch.equal(v, resumed["state_dict"][k])]
    assert different == [], different
    a, b = straight["optimizer_states"][0], resumed["optimizer_states"][0]
    assert a["param_groups"] == b["param_groups"]
    for k in a["state"]:
        assert all(torch.equal(a["state"][k][s], b["state"][k][s]) for s in a["state"][k])
    assert straight["lr_schedulers"] == resumed["lr_schedulers"]
