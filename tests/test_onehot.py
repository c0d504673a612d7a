"""The one-hot latent space (docs/autoencoders.md, "The one-hot latent space"; FLM, arXiv 2602.16813):
the autoencoder, the prediction heads (the default one bit for bit as before, the softmax one exactly the
token cross-entropy), FLM's time reparameterisation, and train / sample / diagnose end to end."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

import sample as sample_entry
import train as train_entry
from conftest import compose_config, tiny_train_overrides
from textflow.autoencoders import OneHotAutoencoder
from textflow.autoencoders.prediction import MSE, SoftmaxPrediction, prediction_of
from textflow.backbones import DiT
from textflow.checkpoint import build_module
from textflow.cli import user_error
from textflow.denoiser import FlowDenoiser
from textflow.errors import ConfigError
from textflow.kernels import chunk_budget
from textflow.objectives import flow_matching_loss
from textflow.objectives.flow_matching import scored_head
from textflow.paths import LinearPath, VPPath
from textflow.time import ArgmaxAccuracyTime
from textflow.types import OneHotLatents, dense

V, B, L = 50, 3, 8


def ids_of(seed: int = 0) -> torch.Tensor:
    return torch.randint(0, V, (B, L), generator=torch.Generator().manual_seed(seed))


def module_of(tmp_path, cache_dir, *extra: str):
    cfg = compose_config("train", tiny_train_overrides(tmp_path, cache_dir) + list(extra))
    torch.manual_seed(0)
    return build_module(cfg, vocab_size=V, seq_len=L)


def test_encode_decode_round_trip_and_nothing_to_train():
    ae = OneHotAutoencoder(vocab_size=V, scale=2.0)
    ids = ids_of()
    x = ae.encode(ids)
    assert ae.latent_dim == V and x.shape == (B, L, V) and x.dtype == torch.float32
    assert torch.equal(x, 2.0 * F.one_hot(ids, V).float())
    logits = ae.decode(x)
    assert torch.equal(logits.argmax(-1), ids)
    assert float((logits.gather(-1, ids.unsqueeze(-1)).squeeze(-1) - logits.topk(2, -1).values[..., 1]).min()) == 20.0
    metrics = ae.reconstruction_metrics(ids)
    assert float(metrics["readout_acc"]) == 1.0 and float(metrics["readout_ce"]) < V * 3e-9
    assert ae.readout_head(x) is None and list(ae.parameters()) == []
    assert float(ae.loss(ids)["loss"]) == 0.0
    assert ae.readout_kind.name == "parallel" and isinstance(prediction_of(ae), SoftmaxPrediction)


def test_latent_width_is_the_vocabulary_and_bad_knobs_are_refused():
    with pytest.warns(UserWarning, match="autoencoder.latent_dim=16 is not used"):
        assert OneHotAutoencoder(vocab_size=V, latent_dim=16).latent_dim == V
    with pytest.raises(ConfigError, match=r"autoencoder.scale=0"):
        OneHotAutoencoder(vocab_size=V, scale=0)
    with pytest.raises(ConfigError, match=r"autoencoder.sharpness=-1"):
        OneHotAutoencoder(vocab_size=V, sharpness=-1)


def test_default_head_leaves_the_embed_loss_and_denoiser_bit_for_bit(tmp_path, cache_dir):
    """The embed autoencoder names no head: the loss is the MSE and the denoiser ``path.to_x_hat``, exactly
    as the code computed them before the heads existed (including conditioning's free positions)."""
    module = module_of(tmp_path, cache_dir)
    autoencoder, backbone, path = module.net["autoencoder"], module.net["backbone"], module.path
    assert prediction_of(autoencoder) is MSE
    x = autoencoder.encode(ids_of()).detach()
    g = torch.Generator().manual_seed(1)
    t, noise = torch.rand(B, generator=g), torch.randn(x.shape, generator=g)
    z = path.sample(x, t, noise).z
    assert torch.equal(module.flow_loss(module.net, x, t, noise), F.mse_loss(backbone(z, t).float(), x.float()))
    given = torch.rand(B, L, generator=g) < 0.3
    times = torch.where(given, torch.ones_like(t).unsqueeze(-1), t.unsqueeze(-1).expand(B, L))
    zg = torch.where(given.unsqueeze(-1), x, z)
    per_token = (backbone(zg, times).float() - x).pow(2).mean(-1)
    expected = (per_token * ~given).sum() / (~given).sum().clamp_min(1)
    assert torch.equal(module.flow_loss(module.net, x, t, noise, given=given), expected)
    den = module.denoiser(use_ema=False)
    assert torch.equal(den(z, t), path.to_x_hat(backbone(z, t).float(), z, t))


def test_self_conditioning_first_pass_goes_through_the_head():
    """The first pass's output reaches the trained pass as ``x_hat``: ``path.to_x_hat`` by default,
    ``scale * softmax`` for one-hot latents."""
    seen = []

    class Recording(DiT):
        def forward(self, z, t, x_prev=None, scale=None, **kw):
            seen.append(x_prev)
            return super().forward(z, t, x_prev, scale, **kw)

    torch.manual_seed(0)
    backbone = Recording(latent_dim=V, max_len=L, width=16, depth=1, heads=2, self_condition=True)
    with torch.no_grad():  # non-zero outputs, so the conversion is visible
        backbone.proj_out.weight.normal_()
    x = OneHotAutoencoder(vocab_size=V, scale=3.0).encode(ids_of())
    t, noise = torch.full((B,), 0.5), torch.randn(x.shape, generator=torch.Generator().manual_seed(2))
    path = LinearPath()
    head = SoftmaxPrediction(scale=3.0)
    flow_matching_loss(backbone, path, x=x, t=t, noise=noise, self_condition=True, head=head)
    first = backbone(path.sample(x, t, noise).z, t, None)
    assert torch.allclose(seen[1], 3.0 * torch.softmax(first, -1), atol=1e-6)
    assert torch.allclose(seen[1].sum(-1), torch.full((B, L), 3.0))
    seen.clear()
    flow_matching_loss(backbone, path, x=x, t=t, noise=noise, self_condition=True)
    assert torch.equal(seen[1], path.to_x_hat(first.float(), None, t))


def one_hot_problem(tmp_path, cache_dir):
    """A one-hot module (scale 2) whose output projection is not zero, and a batch: ids, their latents, times
    and noise."""
    module = module_of(tmp_path, cache_dir, "autoencoder=onehot", "autoencoder.scale=2.0")
    with torch.no_grad():
        module.net["backbone"].proj_out.weight.normal_()
    ids = ids_of()
    x = module.net["autoencoder"].encode(ids)
    g = torch.Generator().manual_seed(1)
    return module, ids, x, torch.rand(B, generator=g), torch.randn(x.shape, generator=g)


def test_onehot_loss_is_the_token_cross_entropy_and_the_denoiser_a_softmax(tmp_path, cache_dir):
    module, ids, x, t, noise = one_hot_problem(tmp_path, cache_dir)
    backbone, path = module.net["backbone"], module.path
    z = path.sample(x, t, noise).z
    with torch.no_grad():
        logits = backbone(z, t).float()
    loss = module.flow_loss(module.net, x, t, noise)
    assert torch.allclose(loss, F.cross_entropy(logits.flatten(0, 1), ids.flatten()), rtol=1e-6)
    given = torch.zeros(B, L, dtype=torch.bool)
    given[:, :3] = True
    zg = torch.where(given.unsqueeze(-1), x, z)
    times = torch.where(given, 1.0, t.unsqueeze(-1).expand(B, L))
    free_ce = F.cross_entropy(backbone(zg, times).float()[:, 3:].flatten(0, 1), ids[:, 3:].flatten())
    assert torch.allclose(module.flow_loss(module.net, x, t, noise, given=given), free_ce, rtol=1e-6)
    with torch.no_grad():
        x_hat = module.denoiser(use_ema=False)(z, t)
    assert torch.allclose(x_hat, 2.0 * torch.softmax(logits, -1), atol=1e-6) and float(x_hat.min()) >= 0


def refusal(build) -> str:
    """The one-line user error behind whatever ``build()`` raised (Hydra wraps it while instantiating)."""
    with pytest.raises(Exception) as caught:
        build()
    found = user_error(caught.value)
    assert isinstance(found, ConfigError), caught.value
    assert "\n" not in str(found)
    return str(found)


def test_onehot_refuses_a_path_that_does_not_predict_x_and_scale_tokens(tmp_path, cache_dir):
    message = refusal(lambda: module_of(tmp_path, cache_dir, "autoencoder=onehot", "path=vp"))
    assert message.startswith("path.prediction='v' is invalid") and message.endswith("use path=linear (prediction 'x')")
    backbone = DiT(latent_dim=V, max_len=L, width=16, depth=1, heads=2)
    message = refusal(lambda: FlowDenoiser(backbone=backbone, path=VPPath(prediction="eps"),
                                           autoencoder=OneHotAutoencoder(vocab_size=V)))
    assert message.startswith("path.prediction='eps' is invalid")
    message = refusal(lambda: module_of(tmp_path, cache_dir, "autoencoder=onehot", "backbone.self_condition=true",
                                        "backbone.scale_tokens=2", "module.self_cond_prob=0.5"))
    assert message.startswith("backbone.scale_tokens=2 is invalid") and message.endswith("use backbone.scale_tokens=0")


def test_argmax_time_is_uniform_in_the_argmax_accuracy():
    """a(t) against a Monte Carlo count of argmax hits; training times and grids uniform in a."""
    time = ArgmaxAccuracyTime(vocab_size=512, scale=1.5, sigma=0.8)
    g = torch.Generator().manual_seed(0)
    for t in (0.5, 0.62, 0.7):
        y = torch.randint(0, 512, (4000,), generator=g)
        z = t * 1.5 * F.one_hot(y, 512) + (1 - t) * 0.8 * torch.randn(4000, 512, generator=g)
        hits = float((z.argmax(-1) == y).float().mean())
        assert abs((512 * hits - 1) / 511 - float(time.accuracy(torch.tensor(t)))) < 0.03
    draws = time.sample(20000, generator=torch.Generator().manual_seed(1))
    a = time.accuracy(draws)
    assert draws.dtype == torch.float32 and 0 <= float(draws.min()) and float(draws.max()) <= 1
    assert abs(float(a.mean()) - 0.5) < 0.01 and abs(float((a < 0.25).float().mean()) - 0.25) < 0.01
    grid = time.grid(4)
    assert float(grid[0]) == 0.0 and float(grid[-1]) == 1.0 and bool((grid.diff() > 0).all())
    assert torch.allclose(time.accuracy(grid[1:-1]), torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64),
                          atol=1e-4)
    with pytest.raises(ConfigError, match=r"time.vocab_size=1 is invalid"):
        ArgmaxAccuracyTime(vocab_size=1)


def test_argmax_time_reads_unset_knobs_from_a_one_hot_model(tmp_path, cache_dir):
    """``time=flm`` with no knobs: the training module and ``Sampler.denoiser`` fill V, the scale and sigma
    from the model; a knob that is set is kept; a latent space that is not one-hot is refused in one line,
    and so is a grid asked of a distribution that was never fitted."""
    module = module_of(tmp_path, cache_dir, "autoencoder=onehot", "autoencoder.scale=1.5",
                       "time@module.train_time=flm")
    fitted = module.train_time
    assert (fitted.vocab_size, fitted.scale, fitted.sigma) == (V, 1.5, module.path.sigma)
    assert torch.equal(fitted.grid(4), ArgmaxAccuracyTime(vocab_size=V, scale=1.5, sigma=module.path.sigma).grid(4))
    kept = ArgmaxAccuracyTime(vocab_size=4096).fit(autoencoder=module.net["autoencoder"], path=module.path)
    assert (kept.vocab_size, kept.scale) == (4096, 1.5)
    with pytest.raises(ConfigError, match=r"time=flm has no latent space yet \(time.vocab_size, time.scale, time.sigma"):
        ArgmaxAccuracyTime().grid(4)
    embed = module_of(tmp_path, cache_dir)
    message = refusal(lambda: ArgmaxAccuracyTime(scale=1.0).fit(autoencoder=embed.net["autoencoder"], path=embed.path))
    assert "autoencoder is EmbeddingAutoencoder" in message and "time.vocab_size, time.sigma" in message
    assert isinstance(ArgmaxAccuracyTime(vocab_size=V, scale=1.0, sigma=1.0).fit(
        autoencoder=embed.net["autoencoder"], path=embed.path), ArgmaxAccuracyTime)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cache_dir):
    out = tmp_path_factory.mktemp("onehot")
    cfg = compose_config("train", ["experiment=onehot", *tiny_train_overrides(out, cache_dir)])
    metrics, objects = train_entry.run(cfg)
    return {"dir": out, "metrics": metrics, "ckpt": objects["checkpoint"], "cfg": cfg,
            "module": objects["module"]}


def test_train_experiment_onehot_trains_with_flm_time(trained):
    cfg, metrics = trained["cfg"], trained["metrics"]
    assert cfg.autoencoder._target_ == "textflow.autoencoders.OneHotAutoencoder"
    # the config leaves time=flm's knobs to the model, which fits them to its own vocabulary
    assert instantiate(cfg.module.train_time).unset == ["vocab_size", "scale", "sigma"]
    time = trained["module"].train_time
    assert isinstance(time, ArgmaxAccuracyTime) and time.vocab_size == cfg.data.tokenizer.vocab_size
    assert metrics["global_step"] == 10 and metrics["val/readout_acc"] == 1.0
    assert 0 < metrics["val/flow_loss"] < 2 * torch.log(torch.tensor(float(cfg.data.tokenizer.vocab_size)))
    assert "samples/ode_K2/unigram_entropy" in (trained["dir"] / "csv" / "metrics.csv").read_text()


@pytest.mark.parametrize("sampler,extra", [("ode", []), ("sde", ["sampler.gamma=1.5"]),
                                           ("ode", ["time@sampler.time=flm", "sampler.time.vocab_size=512"])])
def test_sample_onehot_with_ode_and_sde(trained, tmp_path, sampler, extra):
    cfg = compose_config("sample", [f"ckpt_path={trained['ckpt']}", f"dirs.output_dir={tmp_path}", "num_samples=2",
                                    "batch_size=2", "sampler.steps=2", "evaluation=diversity", f"sampler={sampler}",
                                    *extra])
    sample_entry.run(cfg)
    rows = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(len(r["token_ids"]) == 32 for r in rows)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["nfe"] == 2 and saved["diag/cci_readout"] == 0.0


def test_sampling_on_flm_grid_needs_no_knobs(trained, tmp_path):
    """``time@sampler.time=flm`` on a one-hot checkpoint samples exactly as the grid with the model's own
    vocabulary, scale and sigma written out."""
    def tokens(name, *extra):
        out = tmp_path / name
        cfg = compose_config("sample", [f"ckpt_path={trained['ckpt']}", f"dirs.output_dir={out}", "num_samples=2",
                                        "batch_size=2", "sampler.steps=3", "evaluation=diversity", "sampler=ode",
                                        "time@sampler.time=flm", *extra])
        sample_entry.run(cfg)
        return [json.loads(line)["token_ids"] for line in (out / "samples.jsonl").read_text().splitlines()]

    vocab = trained["cfg"].data.tokenizer.vocab_size
    explicit = tokens("explicit", f"sampler.time.vocab_size={vocab}", "sampler.time.scale=1.0", "sampler.time.sigma=1.0")
    assert tokens("fitted") == explicit
    assert tokens("other_vocab", "sampler.time.vocab_size=4") != explicit


def test_readout_diagnostics_on_onehot_latents(trained, tmp_path):
    """The sharpest readout: every clean latent sits at the same geometric margin scale / sqrt(2), so no
    token is near a boundary (p_m(0) = 0) and the clean readout is exact."""
    from textflow.diagnostics.cli import main as diagnose_main

    diagnose_main([str(trained["ckpt"]), "--out", str(tmp_path), "--blocks", "2", "--steps", "2", "4"])
    result = json.loads((tmp_path / "diagnostics.json").read_text())
    assert result["clean_readout_acc"] == 1.0 and result["latent_dim"] == trained["cfg"].data.tokenizer.vocab_size
    assert result["tube"]["density_at_zero"] == 0.0
    assert result["tube"]["median_margin"] == pytest.approx(2 ** -0.5, rel=1e-5)
    assert [row["K"] for row in result["flip"]] == [2, 4]
    assert set(result["dabi"]) == {"residual/flip", "residual/ce", "boundary/flip", "boundary/ce"}
    assert (tmp_path / "dabi_vs_f.png").is_file()


# ------------------------------------------------------------------ a large vocabulary: no (B, L, V) logits
def test_dit_features_are_the_input_of_its_output_head():
    torch.manual_seed(0)
    z, t = torch.randn(B, L, V), torch.rand(B)
    for kw in ({}, {"self_condition": True}, {"self_condition": True, "scale_tokens": 2}):
        backbone = DiT(latent_dim=V, max_len=L, width=16, depth=1, heads=2, **kw)
        with torch.no_grad():
            backbone.proj_out.weight.normal_()
        features = backbone(z, t, features=True)
        assert features.shape == (B, L, 16)
        assert torch.allclose(backbone.output_head(features), backbone(z, t), atol=1e-6)


def test_the_feature_route_has_the_dense_losses_gradients(tmp_path, cache_dir):
    """The one-hot flow loss scores the DiT's features against its output head in tiles; its value and every
    parameter's gradient are those of the cross-entropy of the full (B, L, V) logits, with and without
    conditioning positions, and a batch whose every position is given scores nothing."""
    module, ids, x, t, noise = one_hot_problem(tmp_path, cache_dir)
    autoencoder, backbone, path = module.net["autoencoder"], module.net["backbone"], module.path
    head = prediction_of(autoencoder)
    assert scored_head(backbone, head, None) is backbone.output_head  # the tiled route is the one compared
    given = torch.zeros(B, L, dtype=torch.bool)
    given[:, :3] = True

    def grads(loss):
        backbone.zero_grad(set_to_none=True)
        loss.backward()
        return {name: p.grad.clone() for name, p in backbone.named_parameters() if p.grad is not None}

    for mask in (None, given):
        tiled = grads(flow_matching_loss(backbone, path, x=x, t=t, noise=noise, given=mask, head=head))
        z = path.sample(x, t, noise).z
        times = t
        if mask is not None:
            z = torch.where(mask.unsqueeze(-1), x, z)
            times = torch.where(mask, 1.0, t.unsqueeze(-1).expand(B, L))
        dense = grads(head.loss(backbone(z, times), x, mask))
        assert tiled.keys() == dense.keys() and "proj_out.weight" in tiled
        for name in dense:
            assert torch.allclose(tiled[name], dense[name], rtol=1e-4, atol=1e-6), name
    everything = torch.ones(B, L, dtype=torch.bool)
    nothing = flow_matching_loss(backbone, path, x=x, t=t, noise=noise, given=everything, head=head)
    assert float(nothing) == 0.0
    nothing.backward()


def test_one_hot_latents_held_as_ids_give_the_dense_floats(tmp_path, cache_dir):
    """Clean one-hot latents passed as their ids (types.OneHotLatents) give bit for bit the noised latents,
    targets and losses of the dense (B, L, V) latents: on both paths, with per-sequence and per-token times,
    conditioning positions (with dropped rows), self-conditioning, and the dense loss route; and a training
    step's loss is the one it had with dense latents."""
    module, ids, x, t, noise = one_hot_problem(tmp_path, cache_dir)
    sparse = module.net["autoencoder"].flow_latents(ids)
    assert isinstance(sparse, OneHotLatents) and sparse.shape == x.shape and sparse.detach() is sparse
    assert torch.equal(sparse.dense(), x) and torch.equal(dense(sparse), x) and dense(x) is x
    per_token = torch.rand(B, L, generator=torch.Generator().manual_seed(2))
    for path in (LinearPath(sigma=0.7), VPPath(prediction="v"), VPPath(prediction="eps")):
        for times in (t, per_token):
            a, b = path.sample(sparse, times, noise), path.sample(x, times, noise)
            assert torch.equal(a.z, b.z)
            assert torch.equal(dense(path.target(a)), path.target(b))
    backbone, path, head = module.net["backbone"], module.path, prediction_of(module.net["autoencoder"])
    given = torch.zeros(B, L, dtype=torch.bool)
    given[:, :3] = True
    dropped = torch.tensor([True, False, True])

    class Plain(torch.nn.Module):  # the backbone without its output head: the dense loss route
        def forward(self, *args, **kwargs):
            return backbone(*args, **kwargs)

    for net in (backbone, Plain()):
        for kw in ({}, {"given": given}, {"given": given, "dropped": dropped}):
            with torch.no_grad():
                a = flow_matching_loss(net, path, x=sparse, t=t, noise=noise, head=head, **kw)
                b = flow_matching_loss(net, path, x=x, t=t, noise=noise, head=head, **kw)
            assert torch.equal(a, b), (type(net).__name__, kw)
    sc = DiT(latent_dim=V, max_len=L, width=16, depth=1, heads=2, self_condition=True)
    with torch.no_grad():
        sc.proj_out.weight.normal_()
        for kw in ({}, {"given": given}):
            a = flow_matching_loss(sc, path, x=sparse, t=t, noise=noise, head=head, self_condition=True, **kw)
            b = flow_matching_loss(sc, path, x=x, t=t, noise=noise, head=head, self_condition=True, **kw)
            assert torch.equal(a, b), kw
    module.log = module.log_dict = lambda *a, **k: None
    torch.manual_seed(3)
    with torch.no_grad():
        step = module.training_step(ids, 0)
    held = module.net["autoencoder"].flow_latents
    module.net["autoencoder"].flow_latents = lambda batch: held(batch).dense()  # the dense latents of before
    torch.manual_seed(3)
    with torch.no_grad():
        assert torch.equal(module.training_step(ids, 0), step)


@pytest.mark.parametrize("stage", ["distill", "flow_map"])
def test_student_stages_of_a_one_hot_teacher_take_its_latents_as_ids(tmp_path, cache_dir, stage):
    """Progressive distillation and the flow-map stage read a one-hot teacher's clean latents as their ids
    (OneHotLatents) and get the loss of the dense latents bit for bit (with a self-conditioned teacher's
    previous estimate for distillation)."""
    from textflow.training.distill import DistillModule
    from textflow.training.flow_map import FlowMapModule

    extra = ["backbone.self_condition=true", "module.self_cond_prob=0.5"] if stage == "distill" else []
    teacher = module_of(tmp_path, cache_dir, "autoencoder=onehot", "autoencoder.scale=2.0", *extra)
    student = (DistillModule if stage == "distill" else FlowMapModule)(
        teacher=teacher, teacher_ckpt=str(tmp_path / "teacher.ckpt"),
        export_path=str(tmp_path / "export.ckpt"), optimizer=torch.optim.AdamW)
    torch.manual_seed(5)
    with torch.no_grad():  # a student that is not its teacher
        for weight in student.student.parameters():
            weight.add_(0.1 * torch.randn_like(weight))
    held, calls = student.autoencoder.flow_latents, []
    student.autoencoder.flow_latents = lambda batch: calls.append(batch) or held(batch)
    assert isinstance(held(ids_of()), OneHotLatents)
    with torch.no_grad():
        sparse = student._loss(ids_of(), generator=torch.Generator().manual_seed(4))
    assert len(calls) == 1  # the stage asks for the ids form
    student.autoencoder.flow_latents = lambda batch: held(batch).dense()  # the dense latents of before
    with torch.no_grad():
        assert torch.equal(student._loss(ids_of(), generator=torch.Generator().manual_seed(4)), sparse)


class _VocabularySized(torch.utils._python_dispatch.TorchDispatchMode):
    """Names the aten ops that return a new tensor (not a view or an input) of at least ``size`` elements."""

    def __init__(self, size: int):
        super().__init__()
        self.size, self.ops = size, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        leaves = torch.utils._pytree.tree_leaves((args, kwargs))
        inputs = {leaf.untyped_storage().data_ptr() for leaf in leaves if isinstance(leaf, torch.Tensor)}
        made = [leaf for leaf in torch.utils._pytree.tree_leaves(out) if isinstance(leaf, torch.Tensor)
                and leaf.untyped_storage().data_ptr() not in inputs]  # views and in-place results are not new
        if any(leaf.numel() >= self.size for leaf in made):
            self.ops.append(name)
        return out


def test_a_one_hot_training_step_makes_only_the_noise_and_z_of_vocabulary_size(tmp_path, cache_dir):
    """At V = 2,048 (past the training step's logit tile) a whole one-hot training step, forward and
    backward, creates (B, L, V) tensors only for the noise and the noised latents: none for the clean latents
    (held as their ids), the path's signal term, the logits, their softmax, the targets or their gradients
    (docs/benchmarks.md, "Large vocabularies")."""
    vocab, batch = 2048, 16  # 128 positions: a (B, L, V) tensor is twice the size of any (W, V) matrix
    overrides = tiny_train_overrides(tmp_path, cache_dir) + ["experiment=onehot", "backbone=dit_tiny"]
    cfg = compose_config("train", overrides)
    torch.manual_seed(0)
    module = build_module(cfg, vocab_size=vocab, seq_len=L)
    module.log = module.log_dict = lambda *a, **k: None
    assert 2 * module.net["backbone"].width <= batch * L
    ids = torch.randint(0, vocab, (batch, L), generator=torch.Generator().manual_seed(0))
    with chunk_budget(batch * L * vocab // 4), _VocabularySized(batch * L * vocab) as seen:
        module.training_step(ids, 0).backward()
    assert sorted(seen.ops) == ["mul", "randn"], seen.ops
