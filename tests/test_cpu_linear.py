"""CPU inference linears through oneDNN (textflow/kernels/linear.py): when they take the fused path, that
they agree with ``F.linear`` (+ tanh-GELU) to float32 rounding, and that training, small matmuls and the
``aten`` backend run PyTorch's own kernels bit for bit."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from textflow.backbones import DiT
from textflow.errors import ConfigError
from textflow.kernels import linear as kl

pytestmark = pytest.mark.skipif(not kl.onednn_available(), reason="this torch build has no oneDNN fused linear")


@pytest.fixture
def spy(monkeypatch):
    """Count the calls that reach oneDNN's fused op."""
    calls = []
    real = kl._fused_op()

    def counting(*args):
        calls.append(args[3])
        return real(*args)

    monkeypatch.setattr(kl, "_fused_op", lambda: counting)
    return calls


def big(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("placement", kl.GELU_PLACEMENTS)
@pytest.mark.parametrize("gelu", [False, True])
@pytest.mark.parametrize("with_bias", [False, True])
def test_fused_path_matches_pytorch(spy, gelu, with_bias, placement):
    x, w, b = big(8, 64, 128), big(256, 128, seed=1) / 12, big(256, seed=2) if with_bias else None
    want = F.linear(x, w, b)
    want = F.gelu(want, approximate="tanh") if gelu else want
    with torch.no_grad(), kl.use_cpu_gelu(placement):
        got = kl.linear(x, w, b, gelu=gelu)
        plain = kl.linear(x, w, b)
    assert spy == ["gelu" if gelu and placement == "fused" else "none", "none"]
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    if gelu and placement == "separate":  # textflow's GELU on oneDNN's plain GEMM, exactly
        assert torch.equal(got, kl.tanh_gelu_(plain.clone()))


def test_a_named_gelu_placement_holds_until_the_block_ends(monkeypatch):
    monkeypatch.setitem(kl._state, "gelu", None)
    monkeypatch.setenv("TEXTFLOW_CPU_GELU", "fused")
    assert kl.cpu_gelu_placement() == "fused"
    with kl.use_cpu_gelu("separate"):
        assert kl.cpu_gelu_placement() == "separate"
    assert kl.cpu_gelu_placement() == "fused"


def test_non_contiguous_input_is_read_correctly(spy):
    x, w, b = big(128, 8, 64).transpose(0, 1), big(512, 64, seed=1) / 8, big(512, seed=2)
    assert not x.is_contiguous()
    with torch.no_grad():
        got = kl.linear(x, w, b)
    assert spy == ["none"]
    torch.testing.assert_close(got, F.linear(x, w, b), rtol=1e-5, atol=1e-5)


def test_training_small_matmuls_and_aten_backend_are_pytorch_bit_for_bit(spy):
    layer = kl.Linear(128, 256)
    x = big(8, 64, 128)
    out = layer(x)  # parameters need gradients: PyTorch's kernel, and the gradient flows
    assert torch.equal(out, F.linear(x, layer.weight, layer.bias))
    out.sum().backward()
    assert layer.weight.grad is not None
    with torch.no_grad():
        small = big(2, 128)
        assert torch.equal(layer(small), F.linear(small, layer.weight, layer.bias))  # below MIN_MACS
        with kl.use_cpu_linear("aten"):
            assert torch.equal(layer(x), F.linear(x, layer.weight, layer.bias))
        assert kl.cpu_linear_backend() == "onednn"
    assert spy == []
    with torch.no_grad():
        layer(x)
    assert spy == ["none"]


def test_autocast_and_other_dtypes_keep_pytorch(spy):
    layer = kl.Linear(128, 256)
    with torch.no_grad():
        layer.double()(big(8, 64, 128).double())
        with torch.autocast("cpu", dtype=torch.bfloat16):
            layer.float()(big(8, 64, 128))
    assert spy == []


def test_gelu_mlp_keeps_the_sequential_state_dict():
    mlp = kl.GeluMLP(32, 128)
    old = nn.Sequential(nn.Linear(32, 128), nn.GELU(approximate="tanh"), nn.Linear(128, 32))
    assert list(mlp.state_dict()) == list(old.state_dict())
    mlp.load_state_dict(old.state_dict())
    x = big(4, 32)
    assert torch.equal(mlp(x), old(x))  # training mode with grads: identical computation


def test_dit_forward_agrees_across_backends(spy):
    torch.manual_seed(0)
    net = DiT(latent_dim=16, max_len=32, width=128, depth=2, heads=4).eval()
    for p in net.parameters():
        nn.init.normal_(p, std=0.05)
    z, t = big(16, 32, 16), torch.rand(16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        with kl.use_cpu_linear("aten"):
            ref = net(z, t)
        assert spy == []
        for placement in kl.GELU_PLACEMENTS:
            with kl.use_cpu_gelu(placement):
                got = net(z, t)
            assert ("gelu" in spy) == (placement == "fused") and spy
            spy.clear()
            torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5)
        with kl.use_cpu_linear("mkl"):
            torch.testing.assert_close(net(z, t), ref, rtol=1e-4, atol=1e-5)
        assert spy == []


@pytest.mark.parametrize("use, current, key, env, choices, env_choices", [
    (kl.use_cpu_linear, kl.cpu_linear_backend, "backend", "TEXTFLOW_CPU_LINEAR", "onednn, mkl, aten",
     "auto, onednn, mkl, aten"),
    (kl.use_cpu_gelu, kl.cpu_gelu_placement, "gelu", "TEXTFLOW_CPU_GELU", "fused, separate",
     "auto, fused, separate")])
def test_bad_setting_names_the_value_and_the_choices(monkeypatch, use, current, key, env, choices, env_choices):
    with pytest.raises(ConfigError, match=rf"'blas'.*{choices}"):
        with use("blas"):
            pass
    monkeypatch.setitem(kl._state, key, None)
    monkeypatch.setenv(env, "fast")
    with pytest.raises(ConfigError, match=rf"{env}='fast'.*{env_choices}"):
        current()


def test_environment_selects_aten(monkeypatch, spy):
    monkeypatch.setitem(kl._state, "backend", None)
    monkeypatch.setenv("TEXTFLOW_CPU_LINEAR", "aten")
    x, w = big(8, 64, 128), big(256, 128, seed=1)
    with torch.no_grad():
        assert torch.equal(kl.linear(x, w), F.linear(x, w))
    assert spy == []


def test_a_build_whose_probe_fails_falls_back(monkeypatch, spy):
    monkeypatch.setitem(kl._state, "available", False)
    x, w = big(8, 64, 128), big(256, 128, seed=1)
    with torch.no_grad():
        assert torch.equal(kl.linear(x, w, gelu=True), F.gelu(F.linear(x, w), approximate="tanh"))
    assert spy == []


def test_every_linear_of_the_models_goes_through_the_kernel():
    """The DiT (with a flow map around it), the transformer VAE, the AR decoder and the causal LM build no
    plain ``nn.Linear`` outside a ``GeluMLP`` (whose forward routes both of its linears)."""
    from textflow.autoencoders import LatentARAutoencoder, TransformerVAE
    from textflow.backbones.flow_map import FlowMapNetwork
    from textflow.baselines.causal_lm import CausalLM

    models = [FlowMapNetwork(backbone=DiT(latent_dim=8, max_len=8, width=32, depth=1, heads=2)),
              TransformerVAE(vocab_size=16, latent_dim=8, width=32, depth=1, decoder_depth=1, heads=2, max_len=8,
                             repa_weight=0.1, repa_dim=16),
              LatentARAutoencoder(vocab_size=16, latent_dim=8, width=32, encoder_depth=1, decoder_depth=1, heads=2,
                                  max_len=8),
              CausalLM(vocab_size=16, width=32, depth=1, heads=2, max_len=8)]
    for model in models:
        inside_mlps = {id(m) for mlp in model.modules() if isinstance(mlp, kl.GeluMLP) for m in mlp}
        plain = [name for name, m in model.named_modules() if type(m) is nn.Linear and id(m) not in inside_mlps]
        assert plain == [], f"{type(model).__name__}: {plain}"


@pytest.fixture
def reorders(monkeypatch):
    """Count the weight reorders into oneDNN's blocked layout."""
    calls = []
    real = kl._reorder

    def counting(w, rows):
        calls.append(tuple(w.shape))
        return real(w, rows)

    monkeypatch.setattr(kl, "_reorder", counting)
    return calls


def test_packed_weights_are_reused_inside_the_block_and_follow_in_place_updates(spy, reorders):
    if not kl._state["packable"]:
        pytest.skip("this torch build cannot reorder linear weights for oneDNN")
    layer, x = kl.Linear(128, 256), big(8, 64, 128)
    with torch.no_grad():
        plain = layer(x)
        assert reorders == []  # outside the block: oneDNN reads the plain weight
        with kl.reuse_packed_weights():
            first, second = layer(x), layer(x)
            with kl.reuse_packed_weights():  # nested: the same cache
                third = layer(x)
            assert reorders == [(256, 128)]
            layer.weight.mul_(2)  # an in-place update bumps the version: repacked, never stale
            doubled = layer(x)
            assert reorders == [(256, 128)] * 2
        after = layer(x)
    assert spy == ["none"] * 6
    for got in (first, second, third):
        torch.testing.assert_close(got, plain, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(doubled, F.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(after, doubled, rtol=1e-6, atol=1e-6)
    assert kl._state["packed"] is None  # the cache ends with the block


def test_generate_packs_each_weight_once(monkeypatch, reorders):
    if not kl._state["packable"]:
        pytest.skip("this torch build cannot reorder linear weights for oneDNN")
    from textflow.autoencoders import EmbeddingAutoencoder
    from textflow.denoiser import FlowDenoiser
    from textflow.paths import LinearPath
    from textflow.samplers import Sampler
    from textflow.sampling.generate import generate

    monkeypatch.setattr(kl, "MIN_MACS", 0)  # the tiny model's matmuls take the oneDNN path too
    torch.manual_seed(0)
    backbone = DiT(latent_dim=8, max_len=8, width=32, depth=2, heads=2).eval()
    den = FlowDenoiser(backbone=backbone, path=LinearPath(), autoencoder=EmbeddingAutoencoder(vocab_size=16, latent_dim=8))
    sampler = Sampler(name="ode", steps=3)
    with kl.use_cpu_linear("aten"):
        want = generate(den, sampler, num_samples=4, seq_len=8, seed=0, batch_size=2)
    got = generate(den, sampler, num_samples=4, seq_len=8, seed=0, batch_size=2)
    packed_per_call = len(reorders)
    generate(den, sampler, num_samples=4, seq_len=8, seed=0, batch_size=2)
    # two batches x three steps reuse one packing of each linear's weight; the next call packs afresh
    linears = [m for m in backbone.modules() if isinstance(m, nn.Linear)]
    assert packed_per_call == len(linears) and len(reorders) == 2 * packed_per_call
    torch.testing.assert_close(got.latents, want.latents, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("placement", kl.GELU_PLACEMENTS)
def test_compiled_graph_calls_the_onednn_op_and_agrees_with_eager(monkeypatch, spy, placement):
    monkeypatch.setattr(kl, "MIN_MACS", 0)  # the tiny model's matmuls take the oneDNN path too
    torch._dynamo.reset()  # the placement is a constant of the graph: trace afresh for each
    torch.manual_seed(0)
    backbone = DiT(latent_dim=8, max_len=8, width=32, depth=1, heads=2).eval()
    for p in backbone.parameters():  # adaLN-Zero starts as the identity: give every weight a value
        torch.nn.init.normal_(p, std=0.1)
    z, t = big(2, 8, 8), torch.tensor([0.3, 0.7])
    with torch.no_grad(), kl.use_cpu_gelu(placement):
        want = backbone(z, t)
        eager_calls = len(spy)
        spy.clear()
        with kl.reuse_packed_weights():
            got = torch.compile(backbone)(z, t)
    torch._dynamo.reset()
    linears = [m for m in backbone.modules() if isinstance(m, nn.Linear)]
    assert eager_calls == len(spy) == len(linears)  # the compiled graph runs every linear through the op
    # fused: oneDNN's GELU post-op in the op; separate: the op is a plain GEMM, the GELU is in the graph
    assert spy.count("gelu") == (len(backbone.blocks) if placement == "fused" else 0)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_the_exp2_form_is_the_tanh_gelu_in_place():
    x = torch.cat([big(4096) * 4, torch.tensor([0.0, -0.0, 1e-30, -30.0, 30.0, 200.0, -200.0])])
    want = F.gelu(x.double(), approximate="tanh")
    got = x.clone()
    assert kl.tanh_gelu_(got) is got  # in place
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got.double(), want, rtol=2e-6, atol=1e-6)
    torch.testing.assert_close(got, F.gelu(x, approximate="tanh"), rtol=2e-6, atol=1e-6)
