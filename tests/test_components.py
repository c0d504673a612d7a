"""Paths, backbone, autoencoder, EMA and checkpoint safety on tiny tensors."""

from __future__ import annotations

import math

import pytest
import torch

from textflow.autoencoders import EmbeddingAutoencoder
from textflow.backbones import DiT
from textflow.checkpoint import read_checkpoint
from textflow.checkpoint.safe_config import check_config_data
from textflow.training.ema import EMA
from textflow.errors import CheckpointError, ConfigError
from textflow.paths import LinearPath, VPPath


@pytest.mark.parametrize("path", [LinearPath(sigma=0.8), VPPath(prediction="eps"), VPPath(prediction="v")],
                         ids=["linear", "vp-eps", "vp-v"])
def test_path_target_converts_back_to_x_and_velocity_is_the_time_derivative(path):
    g = torch.Generator().manual_seed(0)
    x, eps = torch.randn(4, 5, 3, generator=g), torch.randn(4, 5, 3, generator=g)
    t = torch.tensor([0.2, 0.4, 0.6, 0.8])
    s = path.sample(x, t, eps)
    assert torch.allclose(path.to_x_hat(path.target(s), s.z, t), x, atol=1e-5)
    h = 1e-3  # with the exact x_hat, the velocity is d z_t / dt along the path
    fd = (path.sample(x, t + h, eps).z - path.sample(x, t - h, eps).z) / (2 * h)
    assert torch.allclose(path.velocity(x, s.z, t), fd, atol=2e-3)


def test_linear_churn_is_elf_formula():
    path = LinearPath(sigma=1.0)
    z, noise = torch.ones(2, 3, 4), torch.full((2, 3, 4), 2.0)
    t = torch.tensor([0.5, 0.8])
    z_b, t_b = path.renoise(z, t, 0.75, noise)
    assert torch.allclose(t_b, 0.75 * t)
    assert torch.allclose(z_b, 0.75 * z + 0.25 * noise)


def test_vp_churn_keeps_the_marginal_variance():
    path = VPPath(prediction="v")
    x = torch.zeros(20000, 1, 1)
    t = torch.full((20000,), 0.7)
    z = path.sample(x, t, torch.randn(20000, 1, 1, generator=torch.Generator().manual_seed(0))).z
    z_b, t_b = path.renoise(z, t, 0.5, torch.randn(20000, 1, 1, generator=torch.Generator().manual_seed(1)))
    assert z_b.var().item() == pytest.approx(float(path.std(t_b[0])) ** 2, rel=0.03)


def test_noise_to_signal():
    assert LinearPath(sigma=2.0).noise_to_signal(torch.tensor(0.5)).item() == pytest.approx(2.0)
    assert VPPath().noise_to_signal(torch.tensor(0.5)).item() == pytest.approx(1.0)


def test_dit_per_token_time_matches_per_sequence_time():
    torch.manual_seed(0)
    net = DiT(latent_dim=6, max_len=8, width=16, depth=2, heads=2)
    for p in net.parameters():  # leave the zero-init regime so time actually matters
        torch.nn.init.normal_(p, std=0.2)
    z, t = torch.randn(3, 8, 6), torch.rand(3)
    assert torch.allclose(net(z, t), net(z, t[:, None].expand(3, 8)), atol=1e-5)
    t_tok = t[:, None].expand(3, 8).clone()
    t_tok[:, 0] = 1.0
    assert not torch.allclose(net(z, t_tok)[:, 0], net(z, t)[:, 0])


def test_dit_rejects_wrong_shapes_and_bad_sizes():
    net = DiT(latent_dim=4, max_len=8, width=16, depth=1, heads=2)
    with pytest.raises(ValueError, match="expects latents"):
        net(torch.randn(2, 9, 4), torch.rand(2))
    with pytest.raises(ConfigError, match="width=10"):
        DiT(latent_dim=4, max_len=8, width=10, depth=1, heads=4)


def test_tied_readout_decodes_clean_latents_exactly_from_the_start():
    torch.manual_seed(0)
    ae = EmbeddingAutoencoder(vocab_size=300, latent_dim=16, readout="tied")
    ids = torch.arange(300).view(3, 100)
    assert torch.equal(ae.decode(ae.encode(ids)).argmax(-1), ids)


@pytest.mark.parametrize("readout", ["tied", "linear"])
def test_embedding_latents_have_fixed_norm_and_readout_learns(readout):
    torch.manual_seed(0)
    ae = EmbeddingAutoencoder(vocab_size=20, latent_dim=8, readout_noise=0.1, readout=readout)
    ids = torch.randint(0, 20, (16, 10))
    assert torch.allclose(ae.encode(ids).norm(dim=-1), torch.full((16, 10), math.sqrt(8)), atol=1e-5)
    opt = torch.optim.Adam(ae.parameters(), lr=0.05)
    for _ in range(150):
        loss = ae.loss(ids)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert (ae.decode(ae.encode(ids)).argmax(-1) == ids).float().mean() == 1.0


def test_ema_tracks_and_warms_up():
    online = torch.nn.Linear(2, 2)
    ema = EMA(online, decay=0.9)
    w0 = ema.module.weight.clone()
    with torch.no_grad():
        online.weight.fill_(1.0)
    ema.update(online)  # first update uses decay min(0.9, 1/10) = 0.1
    assert torch.allclose(ema.module.weight, 0.1 * w0 + 0.9)
    before = ema.module.weight.clone()
    ema.update(online)  # second: decay min(0.9, 2/11)
    assert torch.allclose(ema.module.weight, (2 / 11) * before + (9 / 11))
    assert not ema.module.weight.requires_grad


def test_only_listed_component_classes_pass_the_checkpoint_config_check():
    ok = {"a": {"_target_": "textflow.paths.LinearPath"}, "b": [{"_target_": "torch.optim.AdamW", "_partial_": True}]}
    check_config_data(ok, source="test")
    bad = {"a": {"inner": {"_target_": "os.system", "_args_": ["echo hacked"]}}}
    with pytest.raises(CheckpointError, match=r"a\.inner\._target_='os.system'"):
        check_config_data(bad, source="test")


def test_missing_and_corrupt_checkpoints_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        read_checkpoint(tmp_path / "nope.ckpt")
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="is not a readable checkpoint"):
        read_checkpoint(junk)
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a textflow checkpoint"):
        read_checkpoint(foreign)


@pytest.mark.parametrize("path", [LinearPath(sigma=0.8), VPPath(prediction="v")], ids=["linear", "vp"])
def test_x_hat_for_velocity_inverts_velocity(path):
    g = torch.Generator().manual_seed(0)
    x_hat, z = torch.randn(3, 4, 2, generator=g), torch.randn(3, 4, 2, generator=g)
    t = torch.tensor([0.1, 0.5, 0.9])
    assert torch.allclose(path.x_hat_for_velocity(path.velocity(x_hat, z, t), z, t), x_hat, atol=1e-5)
