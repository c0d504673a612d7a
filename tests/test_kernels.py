"""The large-vocabulary kernels (textflow.kernels; docs/benchmarks.md, "Large vocabularies") equal the
plain computations they replace, chunked or not, and the autoencoders' readout losses and the parallel
readout's diagnostics keep the values recorded before the kernels existed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from textflow.kernels import (chunk_budget, linear_cross_entropy, readout_argmax, readout_entropy, readout_token_stats,
                              readout_top2, row_slices, top2_probs)

GOLDEN = Path(__file__).parent / "fixtures" / "golden" / "readout_diagnostics.json"


def _problem(n=37, d=8, v=50, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    f = torch.randn(n, d, generator=g).to(dtype).requires_grad_(True)
    w = (torch.randn(v, d, generator=g) / 2).to(dtype).requires_grad_(True)
    b = (torch.randn(v, generator=g) / 4).to(dtype).requires_grad_(True)
    y = torch.randint(0, v, (n,), generator=g)
    return f, w, b, y


def _force_gemm_backend(backend: str, monkeypatch) -> list:
    """Make the readout GEMMs (textflow.kernels.readout_gemm) take ``backend`` at any size; returns the list
    that records each oneDNN call."""
    import textflow.kernels.readout_gemm as gemm
    from textflow.kernels.linear import onednn_available

    if backend == "onednn" and not onednn_available():
        pytest.skip("this torch build has no oneDNN linear")
    monkeypatch.setattr(gemm, "MIN_MACS", 0 if backend == "onednn" else 1 << 62)
    calls = []
    real = gemm._onednn
    monkeypatch.setattr(gemm, "_onednn", lambda *a: (calls.append(a[0].shape), real(*a))[1])
    return calls


@pytest.mark.parametrize("budget", [1, 60, 400, 1 << 21])  # one row per chunk .. everything in one chunk
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("cached", [True, False])  # a weight that stays in cache: whole rows; else two passes
def test_linear_cross_entropy_equals_cross_entropy_of_the_logits(budget, with_bias, cached, monkeypatch):
    import textflow.kernels.cross_entropy as ce

    monkeypatch.setattr(ce, "CACHED_WEIGHT_BYTES", ce.CACHED_WEIGHT_BYTES if cached else 0)
    f, w, b, y = _problem()
    bias = b if with_bias else None
    want = F.cross_entropy(F.linear(f, w, bias).float(), y)
    want_grads = torch.autograd.grad(want * 3.0, [f, w] + ([b] if with_bias else []))
    with chunk_budget(budget):
        got, acc = linear_cross_entropy(f, w, bias, y)
    got_grads = torch.autograd.grad(got * 3.0, [f, w] + ([b] if with_bias else []))
    assert float(got.detach()) == pytest.approx(float(want.detach()), rel=1e-6)
    for g_got, g_want in zip(got_grads, want_grads):
        torch.testing.assert_close(g_got, g_want, rtol=1e-5, atol=1e-6)
    assert float(acc) == pytest.approx(float((F.linear(f, w, bias).argmax(-1) == y).float().mean()))
    assert not acc.requires_grad


@pytest.mark.parametrize("backend", ["aten", "onednn"])
@pytest.mark.parametrize("wanted", ["all", "bias only", "no bias"])
@pytest.mark.parametrize("scale", [1.0, 3.0])  # a loss's own gradient of exactly 1 skips the scaling pass
def test_whole_row_cross_entropy_on_either_gemm_backend(backend, wanted, scale, monkeypatch):
    calls = _force_gemm_backend(backend, monkeypatch)
    f, w, b, y = _problem(n=37, v=300)
    y[:3] = 299
    bias = None if wanted == "no bias" else b
    if wanted == "bias only":
        f, w = f.detach(), w.detach()
    wrt = [t for t in (f, w, bias) if t is not None and t.requires_grad]
    want = F.cross_entropy(F.linear(f, w, bias), y)
    want_grads = torch.autograd.grad(want * scale, wrt)
    with chunk_budget(300 * 10):  # 10 rows a chunk, the weight in cache: four whole-row chunks
        got, acc = linear_cross_entropy(f, w, bias, y)
    got_grads = torch.autograd.grad(got * scale if scale != 1.0 else got, wrt)
    assert float(got.detach()) == pytest.approx(float(want.detach()), rel=1e-6)
    for g_got, g_want in zip(got_grads, want_grads):
        torch.testing.assert_close(g_got, g_want, rtol=1e-5, atol=1e-6)
    assert float(acc) == pytest.approx(float((F.linear(f, w, bias).argmax(-1) == y).float().mean()))
    assert bool(calls) == (backend == "onednn")


@pytest.mark.parametrize("backend", ["aten", "onednn"])
def test_two_pass_cross_entropy_over_several_row_blocks_and_column_tiles(backend, monkeypatch):
    import textflow.kernels.cross_entropy as ce

    calls = _force_gemm_backend(backend, monkeypatch)

    monkeypatch.setattr(ce, "ROW_TILE", 8)
    monkeypatch.setattr(ce, "CACHED_WEIGHT_BYTES", 0)  # a small weight would take whole-row chunks
    f, w, b, y = _problem(n=37, v=50)
    y[:5] = 49  # targets in the last, short column tile
    want = F.cross_entropy(F.linear(f, w, b), y)
    want_grads = torch.autograd.grad(want, [f, w, b])
    with chunk_budget(200):  # 4 rows per whole-row chunk, not all 37: the two-pass kernel, tiles of 8 x 25
        assert ce.ce_tile_shape(37, 50) == (8, 25)
        got, acc = linear_cross_entropy(f, w, b, y)
    assert float(got.detach()) == pytest.approx(float(want.detach()), rel=1e-6)
    for g_got, g_want in zip(torch.autograd.grad(got, [f, w, b]), want_grads):
        torch.testing.assert_close(g_got, g_want, rtol=1e-5, atol=1e-6)
    assert float(acc) == pytest.approx(float((F.linear(f, w, b).argmax(-1) == y).float().mean()))
    assert len(calls) == (0 if backend == "aten" else 10 * 4)  # 5 row blocks x 2 tiles: 2 logits, 2 gradients


@pytest.mark.parametrize("block_rows", [8192, 16, 7])  # one block; blocks; blocks with a short last one
def test_scaled_unit_rows_matches_autograd_of_normalize_including_a_zero_row(block_rows, monkeypatch):
    import textflow.kernels.unit_rows as unit_rows
    from textflow.kernels import scaled_unit_rows

    monkeypatch.setattr(unit_rows, "BLOCK_ROWS", block_rows)
    g = torch.Generator().manual_seed(3)
    table = torch.randn(40, 6, generator=g, dtype=torch.float64)
    table[7] = 0.0  # F.normalize divides it by eps: its gradient has no radial term
    upstream = torch.randn(40, 6, generator=g, dtype=torch.float64)
    results = []
    for fn in (lambda e, s: s.exp() * F.normalize(e, dim=-1), scaled_unit_rows):
        e = table.clone().requires_grad_(True)
        s = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
        out = fn(e, s)
        results.append((out.detach(), *torch.autograd.grad((out * upstream).sum(), [e, s])))
    for got, want in zip(results[1], results[0]):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"\(V, D\) table and a scalar"):
        scaled_unit_rows(table[0], torch.zeros(()))


def test_linear_cross_entropy_takes_any_leading_shape_and_bf16():
    f, w, b, y = _problem(n=24, dtype=torch.bfloat16)
    got, _ = linear_cross_entropy(f.view(4, 6, -1), w, b, y.view(4, 6))
    want = F.cross_entropy(F.linear(f.float(), w.float(), b.float()), y)
    assert float(got.detach()) == pytest.approx(float(want), rel=1e-5)
    got.backward()
    assert f.grad.dtype == torch.bfloat16 and w.grad.dtype == torch.bfloat16


def test_linear_cross_entropy_under_no_grad_keeps_no_gradient_and_rejects_bad_shapes():
    f, w, b, y = _problem()
    with torch.no_grad():
        loss, _ = linear_cross_entropy(f, w, b, y)
    assert not loss.requires_grad
    with pytest.raises(ValueError, match="37 feature rows but 36 targets"):
        linear_cross_entropy(f, w, b, y[:-1])
    with pytest.raises(ValueError, match="no positions"):
        linear_cross_entropy(f[:0], w, b, y[:0])


def test_chunk_budget_rejects_a_non_positive_budget():
    from textflow.errors import ConfigError

    with pytest.raises(ConfigError, match="chunk_elements"):
        with chunk_budget(0):
            pass


def test_readout_chunks_equal_one_call_for_a_readout_that_mixes_positions():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(7, 5, 4, generator=g)
    w = torch.randn(30, 4, generator=g)

    def readout(z):  # mixes positions within a sequence (like the transformer VAE's decoder)
        return (z + z.mean(1, keepdim=True)) @ w.T

    tokens = torch.randint(0, 30, (7, 5), generator=g)
    logits = readout(x)
    with chunk_budget(2 * 5 * 30):  # two sequences per call
        assert [s.stop - s.start for s in row_slices(readout, x)] == [2, 2, 2, 1]
        decoded, ce = readout_token_stats(readout, x, tokens)
        assert torch.equal(readout_argmax(readout, x), logits.argmax(-1))
    assert torch.equal(decoded, logits.argmax(-1))
    torch.testing.assert_close(ce, F.cross_entropy(logits.flatten(0, 1), tokens.flatten(), reduction="none")
                               .view(7, 5))


@pytest.mark.parametrize("budget", [1, 90, 1 << 21])  # one position per chunk .. everything in one chunk
@pytest.mark.parametrize("backend", ["aten", "onednn"])  # the column tiles' GEMMs (readout_gemm.gemm_backend)
def test_top2_and_entropy_through_the_head_equal_the_whole_logits(budget, backend, monkeypatch):
    calls = _force_gemm_backend(backend, monkeypatch)
    g = torch.Generator().manual_seed(2)
    x, w, b = torch.randn(3, 6, 4, generator=g), torch.randn(30, 4, generator=g) * 2, torch.randn(30, generator=g)

    def readout(z):
        return z @ w.T + b

    def head(z):
        return z, w, b

    logits = readout(x)
    probs = logits.softmax(-1)
    want_top2 = probs.topk(2, -1).values
    want_entropy = -(probs * logits.log_softmax(-1)).sum(-1)
    with chunk_budget(budget):
        for h in (head, None):
            top2, argmax = readout_top2(readout, x, head=h)
            torch.testing.assert_close(top2, want_top2)
            assert torch.equal(argmax, logits.argmax(-1))
            torch.testing.assert_close(readout_entropy(readout, x, head=h), want_entropy)
    one_token = top2_probs(torch.zeros(2, 1))[0]
    assert torch.equal(one_token, torch.tensor([[1.0, 0.0], [1.0, 0.0]]))  # the second probability is 0
    with chunk_budget(90), _LargestTensor() as seen:
        readout_top2(readout, x, head=head)
    assert seen.largest < logits.numel()  # positions x vocabulary never held at once
    assert bool(calls) == (backend == "onednn")


@pytest.mark.parametrize("columns", [1, 3, 7, 64])  # tiles of one column .. the whole vocabulary
@pytest.mark.parametrize("base2", [False, True])  # tiles in nats, or times log2 e (column_tiles(base2=True))
def test_online_logits_over_column_tiles_equal_the_whole_row(columns, base2):
    from textflow.kernels.online import OnlineLogits
    from textflow.kernels.tile_ops import LOG2E

    g = torch.Generator().manual_seed(4)
    logits = torch.randn(5, 20, generator=g) * 4
    logits[0, :7] = float("-inf")  # a whole leading tile masked: nothing may turn nan
    logits[1, 3] = logits[1, 11] = logits[1].max() + 1  # a tie across tiles: the earlier column wins
    tokens = torch.tensor([9, 0, 19, 5, 12])
    stats = [OnlineLogits(topk=k, tokens=tokens, entropy=True, base2=base2) for k in (1, 3)]
    unit = LOG2E if base2 else 1.0
    for start in range(0, 20, columns):
        for st in stats:
            st.update(start, logits[:, start:start + columns] * unit)
    lsm = logits.log_softmax(-1)
    for st in stats:
        torch.testing.assert_close(st.lse(), logits.logsumexp(-1))
        torch.testing.assert_close(st.cross_entropy(), -lsm.gather(1, tokens[:, None]).squeeze(1))
        torch.testing.assert_close(st.entropy(), -torch.special.xlogy(lsm.exp(), lsm.exp()).sum(-1))
        torch.testing.assert_close(st.values, logits.topk(st.k, -1).values * unit)
        torch.testing.assert_close(st.top_probs(), lsm.exp().topk(st.k, -1).values)
    assert torch.equal(stats[0].indices[:, 0], logits.argmax(-1)) and stats[0].indices[1, 0] == 3
    assert torch.equal(stats[1].indices[2:], logits[2:].topk(3, -1).indices)  # rows without ties

    best_only = OnlineLogits(logsumexp=False)  # the argmax decode: one max pass per tile
    for start in range(0, 20, columns):
        tile = logits[:, start:start + columns].clone()
        best_only.update(start, tile)
        assert torch.equal(tile, logits[:, start:start + columns])  # read, never overwritten
    assert torch.equal(best_only.indices, stats[0].indices)
    torch.testing.assert_close(best_only.values * unit, stats[0].values, rtol=0, atol=0)
    with pytest.raises(ValueError, match="logsumexp=False"):
        best_only.lse()


@pytest.mark.parametrize("columns", [4096, 512, 256, 300, 1105])  # two-level search .. direct topk
def test_tile_top_equals_topk_and_max_on_any_tile(columns):
    from textflow.kernels.tile_ops import TOP_BLOCK, tile_top

    g = torch.Generator().manual_seed(columns)
    logits = torch.randn(33, columns, generator=g) * 3
    logits[0] = float("-inf")  # a fully masked row
    logits[1, :TOP_BLOCK] = float("-inf")  # a fully masked first block
    top = logits[2].max() + 1
    logits[2, 5] = logits[2, columns - 3] = top  # a tie between the first and the last block
    logits[3, 7] = logits[3, 9] = logits[3].max() + 1  # a tie inside one block
    for k in (1, 2, 3, 5):
        values, columns_ = tile_top(logits, k)
        want = logits.topk(k, -1)
        assert torch.equal(values, want.values)
        assert torch.equal(columns_[4:], want.indices[4:])  # rows without ties: the same columns
        assert torch.equal(logits.gather(1, columns_), values)  # every row: columns holding those values
    values, columns_ = tile_top(logits, 1)
    best = logits.max(-1, keepdim=True)
    assert torch.equal(values, best.values) and torch.equal(columns_, best.indices)  # first column on a tie
    assert columns_[2, 0] == 5 and columns_[3, 0] == 7
    strided = logits.t().contiguous().t()  # a non-contiguous tile takes topk directly
    assert torch.equal(tile_top(strided, 2)[0], logits.topk(2, -1).values)


def test_exp_through_exp2_matches_exp_in_place():
    from textflow.kernels.tile_ops import exp_

    x = torch.randn(64, 4096, generator=torch.Generator().manual_seed(3)) * 10
    x = x - x.amax(-1, keepdim=True)  # exp(l - max l), as every caller takes it
    x[0, :5] = float("-inf")
    want = x.double().exp()
    got = x.clone()
    assert exp_(got) is got  # written in place
    assert got[0, :5].eq(0).all() and got.isfinite().all()
    near = x > -30  # below, float32 results are a few ulps of 1e-13 or denormal, for exp as for exp2
    torch.testing.assert_close(got.double()[near], want[near], rtol=2e-6, atol=0)
    torch.testing.assert_close(got.double().sum(-1), want.sum(-1), rtol=3e-7, atol=0)


def test_tile_top_keeps_nan_where_max_does():
    from textflow.kernels.tile_ops import tile_top

    logits = torch.randn(2, 1024, generator=torch.Generator().manual_seed(1))
    logits[0, 700] = float("nan")
    values, columns = tile_top(logits, 1)
    best = logits.max(-1, keepdim=True)
    assert torch.equal(columns, best.indices) and values[0, 0].isnan() and values[1, 0] == best.values[1, 0]


def test_online_logits_refuse_statistics_that_need_the_logsumexp_without_it():
    from textflow.kernels.online import OnlineLogits

    for kwargs in ({"tokens": torch.tensor([1])}, {"entropy": True}):
        with pytest.raises(ValueError, match="need logsumexp=True"):
            OnlineLogits(logsumexp=False, **kwargs)


@pytest.mark.parametrize("backend", ["aten", "onednn"])
def test_perturbation_stats_equal_reading_every_perturbed_latent(backend, monkeypatch):
    from textflow.kernels import perturbation_stats

    calls = _force_gemm_backend(backend, monkeypatch)
    g = torch.Generator().manual_seed(3)
    x, w, b = torch.randn(3, 5, 8, generator=g), torch.randn(40, 8, generator=g), torch.randn(40, generator=g)
    tokens = torch.randint(0, 40, (3, 5), generator=g)
    deltas = [torch.randn(3, 5, 8, generator=g) for _ in range(3)]
    with chunk_budget(2 * 40):  # two positions per chunk
        got = perturbation_stats(x, tokens, w, b, deltas, (0.5, 2.0))
    assert set(got) == {(i, f) for i in range(3) for f in (0.5, 2.0)}
    for (i, f), (decoded, ce) in got.items():
        logits = F.linear(x + f * deltas[i], w, b)
        assert torch.equal(decoded, logits.argmax(-1))
        torch.testing.assert_close(ce, F.cross_entropy(logits.flatten(0, 1), tokens.flatten(), reduction="none")
                                   .view(3, 5), rtol=1e-5, atol=1e-5)
    assert bool(calls) == (backend == "onednn")


# ------------------------------------------------------------------ golden values (recorded before the kernels)
def _record() -> dict:
    """What tests/fixtures/golden/readout_diagnostics.json holds: the parallel readout's ``measure`` and
    the readout losses' values and squared gradient norms, on test_golden's tiny seeded models."""
    from test_golden import PATHS, SEQ_LEN, VOCAB, build_autoencoder, build_backbone

    from textflow.denoiser import FlowDenoiser
    from textflow.objectives.decoder import decoder_loss
    from textflow.readouts.parallel import measure
    from textflow.time import LogitNormalTime

    out = {}
    ids = torch.randint(0, VOCAB, (6, SEQ_LEN), generator=torch.Generator().manual_seed(5))
    for kind in ("embed_tied", "embed_linear", "vae"):
        den = FlowDenoiser(backbone=build_backbone(), path=PATHS["linear"](), autoencoder=build_autoencoder(kind))
        out[f"measure/{kind}"] = json.loads(json.dumps(measure(den, ids, steps=(2, 4), seed=3, curves=True).as_dict()))
        ae = build_autoencoder(kind).train()
        losses = ae.loss(ids, generator=torch.Generator().manual_seed(7))
        losses["loss"].backward()
        rec = {k: float(v.detach()) for k, v in losses.items() if torch.is_tensor(v) and v.dim() == 0}
        rec.update({f"grad/{n}": float(p.grad.double().pow(2).sum()) for n, p in ae.named_parameters()
                    if p.grad is not None})
        out[f"loss/{kind}"] = rec
    for kind in ("embed_tied", "embed_linear", "vae"):
        ae = build_autoencoder(kind).train()
        torch.manual_seed(9)
        loss = decoder_loss(ae, ids, time=LogitNormalTime(mean=0.8, std=0.8), noise_scale=1.0)
        loss.backward()
        rec = {"loss": float(loss)}
        rec.update({f"grad/{n}": float(p.grad.double().pow(2).sum()) for n, p in ae.named_parameters()
                    if p.grad is not None})
        rec.update({f"recon/{k}": float(v) for k, v in ae.reconstruction_metrics(ids).items()})
        out[f"decoder/{kind}"] = rec
    return out


def _mismatches(got, want, path="") -> list[str]:
    if isinstance(want, dict):
        if set(got) != set(want):
            return [f"{path}: keys {sorted(got)} != {sorted(want)}"]
        return [m for k in want for m in _mismatches(got[k], want[k], f"{path}/{k}")]
    if isinstance(want, list):
        if len(got) != len(want):
            return [f"{path}: length {len(got)} != {len(want)}"]
        return [m for i, (a, b) in enumerate(zip(got, want)) for m in _mismatches(a, b, f"{path}[{i}]")]
    if isinstance(want, float) and not isinstance(want, bool):
        same = (math.isnan(want) and math.isnan(got)) or abs(got - want) <= 1e-5 * max(abs(want), 1.0)
        return [] if same else [f"{path}: {got!r} != golden {want!r}"]
    return [] if got == want else [f"{path}: {got!r} != golden {want!r}"]


@pytest.mark.parametrize("budget", [None, 40])  # the default budget, and a budget of less than one row
def test_readout_losses_and_diagnostics_keep_their_golden_values(budget):
    want = json.loads(GOLDEN.read_text())
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as recorded
    try:
        if budget is None:
            got = _record()
        else:
            with chunk_budget(budget):
                got = _record()
    finally:
        torch.set_num_threads(threads)
    assert _mismatches(got, want) == []


def test_golden_comparison_detects_a_changed_value():
    want = json.loads(GOLDEN.read_text())
    got = json.loads(GOLDEN.read_text())
    got["measure/embed_tied"]["dabi"]["boundary/ce"]["ratio"][3] *= 1.001
    assert _mismatches(got, want) == ["/measure/embed_tied/dabi/boundary/ce/ratio[3]: "
                                      f"{got['measure/embed_tied']['dabi']['boundary/ce']['ratio'][3]!r} != golden "
                                      f"{want['measure/embed_tied']['dabi']['boundary/ce']['ratio'][3]!r}"]


# ------------------------------------------------------------------ memory: no (B, L, V) logits tensor
class _LargestTensor(torch.utils._python_dispatch.TorchDispatchMode):
    """Records the element count of the largest tensor any aten op returns inside the block."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for leaf in torch.utils._pytree.tree_leaves(out):
            if isinstance(leaf, torch.Tensor):
                self.largest = max(self.largest, leaf.numel())
        return out


def test_readout_loss_and_diagnostics_never_hold_the_positions_by_vocabulary_logits():
    from test_golden import PATHS, build_backbone

    from textflow.autoencoders import EmbeddingAutoencoder
    from textflow.denoiser import FlowDenoiser
    from textflow.readouts.parallel import measure

    vocab, batch, length = 3000, 4, 8
    torch.manual_seed(0)
    ae = EmbeddingAutoencoder(vocab_size=vocab, latent_dim=8)
    ids = torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(0))
    full = batch * length * vocab  # what F.cross_entropy(decode(...)) would allocate, several times
    with chunk_budget(3 * vocab), _LargestTensor() as seen:
        ae.loss(ids)["loss"].backward()
    table = vocab * 8  # the V x D embedding table and its gradient: the largest tensors left
    # the table's gradient is summed transposed with the bias's as one more row: V x (D + 1)
    assert 0 < seen.largest <= max(3 * vocab, table + vocab) and table * 4 == full
    den = FlowDenoiser(backbone=build_backbone(), path=PATHS["linear"](), autoencoder=ae.eval())
    with chunk_budget(3 * vocab), _LargestTensor() as seen:
        measure(den, ids, steps=(2,), f_grid=(1.0,), isotropic_draws=1)
    assert seen.largest <= max(3 * vocab, table)
    with _LargestTensor() as seen:  # the check is real: a plain decode holds them all
        ae.decode(ae.encode(ids))
    assert seen.largest == full


def test_keep_freed_memory_sets_glibc_thresholds_once_or_says_it_could_not(monkeypatch):
    import textflow.allocator as allocator

    monkeypatch.setattr(allocator, "_done", [False])
    monkeypatch.setenv("TEXTFLOW_MALLOC", "default")
    assert allocator.keep_freed_memory() is False  # asked to leave the allocator alone
    monkeypatch.delenv("TEXTFLOW_MALLOC")
    first = allocator.keep_freed_memory()
    import platform

    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert first is True and allocator._done == [True]
    assert allocator.keep_freed_memory() is first  # idempotent


def test_a_weight_that_fits_the_cache_takes_whole_row_chunks_and_a_larger_one_two_passes(monkeypatch):
    import textflow.kernels.cross_entropy as ce

    taken = []
    for schedule in ("_whole_rows", "_two_pass_tiles"):
        real = getattr(ce, schedule)
        monkeypatch.setattr(ce, schedule,
                            lambda *a, _real=real, _name=schedule: (taken.append(_name), _real(*a))[1])
    f, w, b, y = _problem(n=37, v=50)
    with chunk_budget(200):  # 4 rows per chunk: not every row fits one
        linear_cross_entropy(f, w, b, y)
        monkeypatch.setattr(ce, "CACHED_WEIGHT_BYTES", w.numel() * w.element_size() - 1)
        linear_cross_entropy(f, w, b, y)
    assert taken == ["_whole_rows", "_two_pass_tiles"]
    taken.clear()  # a weight past the cache: whole rows once a chunk holds WHOLE_ROW_CHUNK_MIN rows
    f, w, b, y = _problem(n=ce.WHOLE_ROW_CHUNK_MIN + 40, v=50)
    for rows in (ce.WHOLE_ROW_CHUNK_MIN, ce.WHOLE_ROW_CHUNK_MIN - 1):
        with chunk_budget(rows * 50):
            linear_cross_entropy(f, w, b, y)
    assert taken == ["_whole_rows", "_two_pass_tiles"]
    assert ce.ce_chunk_elements() // 50_257 >= ce.WHOLE_ROW_CHUNK_MIN  # by default at GPT-2's vocabulary
    taken.clear()  # on oneDNN's GEMMs whole rows from WHOLE_ROW_CHUNK_MIN_ONEDNN rows a chunk
    _force_gemm_backend("onednn", monkeypatch)
    for rows in (ce.WHOLE_ROW_CHUNK_MIN_ONEDNN, ce.WHOLE_ROW_CHUNK_MIN_ONEDNN - 1):
        with chunk_budget(rows * 50):
            linear_cross_entropy(f, w, b, y)
    assert taken == ["_whole_rows", "_two_pass_tiles"]
