"""The autoencoder zoo on tiny configs: shapes, round trips, the AR decoder's KV cache, REPA's gradient
path, token alignment for the teacher, and the frozen-embedding source."""

from __future__ import annotations

import pytest
import torch

from textflow.autoencoders import (FrozenEmbeddingAutoencoder, ImageAutoencoder, LatentARAutoencoder,
                                   NormalizedAutoencoder, TransformerVAE)
from textflow.autoencoders.repa import overlap_weights, token_spans
from textflow.errors import ConfigError

V, L = 40, 6


def tiny_vae(**kw):
    return TransformerVAE(vocab_size=V, latent_dim=8, width=32, heads=2, max_len=16, **kw)


def tiny_ar(**kw):
    return LatentARAutoencoder(vocab_size=V, latent_dim=8, width=32, heads=2, max_len=16, **kw)


@pytest.fixture
def ids():
    return torch.randint(0, V, (3, L), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("make", [tiny_vae, tiny_ar])
def test_text_autoencoders_shapes_and_loss(make, ids):
    model = make()
    z = model.encode(ids)
    assert z.shape == (3, L, 8)
    assert model.decode(z).shape == (3, L, V)
    out = model.loss(ids, generator=torch.Generator().manual_seed(1))
    assert out["loss"].requires_grad and 0 <= float(out["readout_acc"]) <= 1
    metrics = model.reconstruction_metrics(ids)
    assert set(metrics) >= {"readout_acc", "readout_ce"}


@pytest.mark.parametrize("make", [tiny_vae, tiny_ar])
def test_text_autoencoders_learn_a_round_trip(make, ids):
    torch.manual_seed(0)
    model = make()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        opt.zero_grad()
        model.loss(ids)["loss"].backward()
        opt.step()
    model.eval()
    assert float(model.reconstruction_metrics(ids)["readout_acc"]) == 1.0


def test_ar_decoder_with_and_without_kv_cache_gives_identical_tokens(ids):
    model = tiny_ar().eval()
    z = model.encode(ids)
    cached, cached_logits = model.generate(z, use_cache=True)
    plain, plain_logits = model.generate(z, use_cache=False)
    assert torch.equal(cached, plain)
    assert torch.allclose(cached_logits, plain_logits, atol=1e-5)
    # sampled decoding: same generator state, same tokens, cache or not
    a = model.generate(z, temperature=1.0, generator=torch.Generator().manual_seed(3), use_cache=True)[0]
    b = model.generate(z, temperature=1.0, generator=torch.Generator().manual_seed(3), use_cache=False)[0]
    assert torch.equal(a, b)


def test_ar_greedy_decode_agrees_with_teacher_forcing_on_its_own_tokens(ids):
    model = tiny_ar().eval()
    z = model.encode(ids)
    tokens, logits = model.generate(z)
    assert torch.equal(logits.argmax(-1), tokens)
    assert torch.allclose(model.teacher_forced_logits(z, tokens), logits, atol=1e-5)


def test_ar_soft_feed_changes_what_is_fed_back(ids):
    model = tiny_ar().eval()
    z = model.encode(ids)
    hard = model.generate(z)[1]
    soft = model.generate(z, feed="soft")[1]
    assert torch.allclose(hard[:, 0], soft[:, 0])  # the first step sees no fed-back token
    assert not torch.allclose(hard[:, 1:], soft[:, 1:])


def test_ar_without_the_direct_path_decodes_from_the_prefix_alone(ids):
    model = tiny_ar(direct_latent=False).eval()
    assert model.latent_at_token is None
    assert not any("latent_at_token" in name for name in model.state_dict())
    z = model.encode(ids)
    cached, cached_logits = model.generate(z, use_cache=True)
    plain, plain_logits = model.generate(z, use_cache=False)
    assert torch.equal(cached, plain) and torch.allclose(cached_logits, plain_logits, atol=1e-5)
    assert torch.allclose(model.teacher_forced_logits(z, cached), cached_logits, atol=1e-5)
    # the latents still matter, through the prefix only
    assert not torch.allclose(model.generate(z + 1.0)[1], cached_logits)


class StubTeacher:
    """Stands in for a frozen HF encoder: fixed random states of width 12 for every token."""

    name_or_path, hidden_size = "stub", 12

    def __call__(self, ids):
        g = torch.Generator().manual_seed(7)
        return torch.randn(*ids.shape, 12, generator=g), torch.ones(ids.shape, dtype=torch.bool)


def test_repa_gradient_reaches_the_encoder_only(ids):
    model = tiny_vae(repa_weight=1.0, repa_dim=12, depth=2, repa_layer=1)
    model.teacher = StubTeacher()
    _, _, hidden = model.posterior(ids, return_layer=1)
    repa_loss, cos = model.repa(hidden, ids)
    repa_loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert grads["embedding.weight"].abs().sum() > 0
    assert grads["encoder.blocks.0.qkv.weight"].abs().sum() > 0
    assert all(grads[n] is None for n in grads if n.startswith(("decoder.", "to_logits", "from_latent")))
    assert all(grads[n] is None for n in grads if n.startswith("encoder.blocks.1"))  # above the aligned layer
    assert -1 <= float(cos) <= 1


def test_repa_probe_leaves_the_encoder_untouched(ids):
    model = tiny_vae(repa_weight=0.0, repa_probe=True, repa_dim=12)
    model.teacher = StubTeacher()
    out = model.loss(ids)
    assert "repa_cos" in out
    model.zero_grad()
    _, _, hidden = model.posterior(ids, return_layer=1)
    model.repa(hidden, ids)[0].backward()
    assert model.embedding.weight.grad is None and model.repa_head[0].weight.grad is not None


def test_repa_teacher_dim_mismatch_is_a_clear_error(ids):
    model = tiny_vae(repa_weight=1.0, repa_dim=16)
    model.teacher = StubTeacher()
    with pytest.raises(ConfigError, match="repa_dim=16.*hidden size 12"):
        model.loss(ids)


def test_token_alignment_by_character_overlap():
    pieces = ["to", " be", ",", " or"]
    text, spans = token_spans(pieces, [0, 1, 2, 3])
    assert text == "to be, or" and spans.tolist() == [[0, 2], [2, 5], [5, 6], [6, 9]]
    teacher = torch.tensor([[0, 0], [0, 2], [3, 5], [5, 6], [7, 9], [0, 0]])  # [CLS] to be , or [SEP]
    w = overlap_weights(spans, teacher)
    assert w.argmax(1).tolist() == [1, 2, 3, 4] and torch.allclose(w.sum(1), torch.ones(4))


def tiny_bert_folder(tmp_path, vocab: int = V):
    from transformers import BertConfig, BertModel

    model = BertModel(BertConfig(vocab_size=vocab, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=32, max_position_embeddings=32))
    model.save_pretrained(tmp_path)
    return str(tmp_path)


@pytest.mark.parametrize("layer", [0, 2])
def test_frozen_embedding_source_stays_frozen_and_out_of_the_state_dict(tmp_path, ids, layer):
    model = FrozenEmbeddingAutoencoder(vocab_size=V + 1, latent_dim=8, source=tiny_bert_folder(tmp_path), layer=layer,
                                       hidden_size=16, unk_id=1)
    ids = torch.cat([ids, torch.full((3, 1), V)], dim=1)  # an added end-of-text id past the source's table
    z = model.encode(ids)
    assert z.shape == (3, L + 1, 8) and model.decode(z).shape == (3, L + 1, V + 1)
    model.loss(ids)["loss"].backward()
    assert set(model.state_dict()) == {"bottleneck.weight", "bottleneck.bias", "readout.weight", "readout.bias"}
    assert all(p.grad is None for p in model.frozen_model().parameters())


def test_frozen_embedding_rejects_another_vocabulary(tmp_path, ids):
    model = FrozenEmbeddingAutoencoder(vocab_size=500, latent_dim=8, source=tiny_bert_folder(tmp_path), hidden_size=16)
    with pytest.raises(ConfigError, match="embeds 40 tokens but the data tokenizer has 500"):
        model.encode(ids)


def test_image_autoencoder_round_trip_shapes():
    model = ImageAutoencoder(latent_tokens=4, latent_dim=3)
    images = torch.rand(5, 64)
    z = model.encode(images)
    assert z.shape == (5, 4, 3) and model.decode(z).shape == (5, 64)
    assert not model.readout_kind.decodes_tokens and "recon_mse" in model.reconstruction_metrics(images)


def test_normalized_autoencoder_standardises_and_inverts(ids):
    inner = tiny_vae().eval()
    wrapped = NormalizedAutoencoder(autoencoder=inner)
    wrapped.fit_statistics([ids, ids.flip(0)])
    z = wrapped.encode(ids)
    flat = z.flatten(0, 1)
    assert torch.allclose(flat.mean(0), torch.zeros(8), atol=1e-5)
    assert torch.allclose(flat.std(0, unbiased=False), torch.ones(8), atol=1e-4)
    assert torch.allclose(wrapped.decode(z), inner.decode(inner.encode(ids)), atol=1e-5)
    assert bool(wrapped.fitted) and not any(p.requires_grad for p in wrapped.parameters())


def test_tied_readout_loss_reads_its_latents_from_the_readout_weight_with_a_sparse_gradient(ids):
    """The tied loss looks its clean latents up in the readout's weight (EmbeddingAutoencoder.loss): the same
    loss and gradients as encoding them from the table, without the lookup's dense table-sized gradient."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from textflow.autoencoders import EmbeddingAutoencoder
    from textflow.kernels import linear_cross_entropy

    class Ops(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.add(func.overloadpacket.__name__)
            return func(*args, **(kwargs or {}))

    torch.manual_seed(0)
    ae = EmbeddingAutoencoder(vocab_size=50, latent_dim=8)
    with torch.no_grad():
        ae.log_temperature.fill_(0.7)
        ae.readout_bias.normal_()
    params = [ae.embedding.weight, ae.log_temperature, ae.readout_bias]
    with Ops() as seen:
        got = ae.loss(ids, generator=torch.Generator().manual_seed(1))
        got_grads = torch.autograd.grad(got["loss"], params)
    assert "embedding_dense_backward" not in seen.names

    g = torch.Generator().manual_seed(1)  # the same noise draws, through encode
    x = ae.encode(ids)
    std = torch.rand((ids.shape[0], 1, 1), generator=g) * ae.readout_noise
    noisy = x + std * torch.randn(x.shape, generator=g)
    want, acc = linear_cross_entropy(noisy, *ae.readout_weights(), ids)
    assert float(got["loss"]) == pytest.approx(float(want), rel=1e-6)
    assert float(got["readout_acc"]) == float(acc)
    for a, b in zip(got_grads, torch.autograd.grad(want, params)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
