"""Diagnostics on cases with known answers (docs/diagnostics.md)."""

from __future__ import annotations

import math

import pytest
import torch

from test_samplers import GaussianDenoiser
from textflow.diagnostics import boundary_geometry, cci_from_commits, dabi_curve, oracle_flip_rate, terminal_time, tube_law
from textflow.diagnostics.ablation import commit_ablation
from textflow.diagnostics.cci import cci_autoregressive
from textflow.paths import LinearPath
from textflow.samplers import Sampler

W = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])  # two tokens in 2-D: the boundary is the line x0 = 0


def two_token_readout(x):
    return x @ W.T


def test_two_token_linear_readout_margins_and_normals_are_analytic():
    x = torch.tensor([[[0.5, 3.0], [-2.0, 1.0]]])
    geo = boundary_geometry(two_token_readout, x)
    assert geo.tokens.tolist() == [[0, 1]] and geo.runner_up.tolist() == [[1, 0]]
    assert torch.allclose(geo.logit_margin, torch.tensor([[1.0, 4.0]]))  # l_y - l_y' = 2 |x0|
    assert torch.allclose(geo.geometric_margin, torch.tensor([[0.5, 2.0]]))  # distance to x0 = 0
    assert torch.allclose(geo.normal, torch.tensor([[[-1.0, 0.0], [1.0, 0.0]]]))  # toward the runner-up


def test_boundary_direction_flips_exactly_past_the_margin():
    x = torch.tensor([[[0.5, 0.0]] * 4])
    r = torch.tensor([[[0.0, 1.0]] * 4])  # |r| = 1, orthogonal to the normal
    curve = dabi_curve(two_token_readout, x, r, direction="boundary", response_kind="flip",
                       f_grid=(0.4, 0.6), isotropic_draws=4, generator=torch.Generator().manual_seed(0))
    assert curve.structured == [0.0, 1.0]  # the boundary sits at distance 0.5
    assert curve.alignment_cos2 == pytest.approx(0.0) and curve.isotropic_cos2 == 0.5


def test_isotropic_structured_direction_gives_dabi_one_on_a_linear_decoder():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    readout = torch.nn.Linear(16, 50)
    x = torch.randn(128, 32, 16, generator=g)
    r = torch.randn(128, 32, 16, generator=g)  # a "structured" direction that is in fact isotropic
    for kind in ("flip", "ce"):  # f = 2: the CE increase is dominated by its (direction-blind) 2nd order
        curve = dabi_curve(readout, x, r, response_kind=kind, f_grid=(2.0,), isotropic_draws=8,
                           generator=torch.Generator().manual_seed(1))
        assert curve.at(2.0) == pytest.approx(1.0, abs=0.1), kind
    assert curve.alignment_cos2 == pytest.approx(1 / 16, rel=0.2)


def test_zero_isotropic_response_is_reported_as_a_lower_bound():
    d = 400  # in high dimension a random direction of norm 6 moves x0 by about 6 / 20: never 5
    wide = torch.zeros(2, d)
    wide[0, 0], wide[1, 0] = 1.0, -1.0
    x = torch.zeros(1, 3, d)
    x[..., 0] = 5.0
    r = torch.zeros(1, 3, d)
    r[..., 0] = -6.0  # straight across the boundary
    curve = dabi_curve(lambda v: v @ wide.T, x, r, response_kind="flip", f_grid=(1.0,), isotropic_draws=2,
                       generator=torch.Generator().manual_seed(0))
    assert curve.structured == [1.0] and curve.isotropic == [0.0] and curve.lower_bound == [True]
    assert curve.ratio == [pytest.approx(6.0)]  # 1 / (one flip in 3 positions x 2 draws)


def test_cci_for_parallel_committing_and_autoregressive_decoders():
    assert cci_from_commits(None, 4).value == 0.0
    steps = torch.tensor([[0, 1, 3, -1]])
    cci = cci_from_commits(steps, 4)
    assert cci.value == pytest.approx(0.5) and cci.curve == [0.25, 0.5, 0.5, 0.75]
    assert cci_autoregressive(64) == pytest.approx(63 / 64)
    den = GaussianDenoiser(LinearPath())
    out = Sampler(name="commit", steps=4, rule="confidence", threshold=1.0)(den, torch.randn(2, 5, 1))
    assert cci_from_commits(out.committed_step, 4).value == 0.0  # a sampler that commits nothing


def test_oracle_flip_rate_and_terminal_time():
    assert terminal_time(4) == pytest.approx(0.75)
    den = GaussianDenoiser(LinearPath(), mu=0.0, s=1.0, vocab=2)
    x = torch.full((8, 16, 1), 0.9)  # decodes to the token at +1
    assert oracle_flip_rate(den, x, 0.999999, generator=torch.Generator().manual_seed(0)) == 0.0
    assert oracle_flip_rate(den, x, 0.05, generator=torch.Generator().manual_seed(0)) > 0.0


def test_tube_law_density_and_prediction():
    margins = torch.linspace(0, 1, 10001)  # uniform on [0, 1]: one-sided density 1, two-sided 0.5
    law = tube_law(margins, bandwidth_fraction=0.2)
    assert law.density_at_zero == pytest.approx(0.5, rel=0.01)
    assert law.predicted_flip(0.1) == pytest.approx(math.sqrt(2 / math.pi) * 0.5 * 0.1, rel=0.01)
    # small s: the margin-tail prediction reduces to the linear law (smooth density at 0)
    assert law.predicted_flip_tail(0.01) == pytest.approx(law.predicted_flip(0.01), rel=0.02)


def test_tube_tail_with_one_margin_is_a_gaussian_tail():
    """Every margin equal to m: P(s Z > m) exactly; the linear law sees no mass at 0 and predicts 0."""
    law = tube_law(torch.full((100,), 2.0))
    assert law.predicted_flip(1.0) == 0.0
    assert law.predicted_flip_tail(1.0) == pytest.approx(0.5 * math.erfc(2.0 / math.sqrt(2)), rel=1e-9)
    assert law.predicted_flip_tail(0.5) < law.predicted_flip_tail(1.0) < law.predicted_flip_tail(4.0) < 0.5


def test_no_response_in_either_direction_is_nan_not_a_bound():
    """(also: a CE change <= 0 along random directions leaves the CE ratio undefined, never a bound)"""
    x = torch.tensor([[[5.0, 0.0]]])
    r = torch.tensor([[[0.0, 0.1]]])
    curve = dabi_curve(two_token_readout, x, r, response_kind="flip", f_grid=(1.0,), isotropic_draws=2)
    assert math.isnan(curve.ratio[0]) and curve.lower_bound == [False]


def test_diagnose_report_on_a_trained_checkpoint(tmp_path, cache_dir):
    import json

    import train as train_entry
    from conftest import compose_config, tiny_train_overrides
    from textflow.diagnostics.cli import main as diagnose_main

    _, objs = train_entry.run(compose_config("train", tiny_train_overrides(tmp_path / "run", cache_dir)
                                             + ["trainer.max_steps=3"]))
    diagnose_main([str(objs["checkpoint"]), "--out", str(tmp_path / "diag"), "--blocks", "4", "--steps", "2", "4"])
    result = json.loads((tmp_path / "diag" / "diagnostics.json").read_text())
    assert [row["K"] for row in result["flip"]] == [2, 4]
    assert set(result["dabi"]) == {"residual/flip", "residual/ce", "boundary/flip", "boundary/ce"}
    assert (tmp_path / "diag" / "dabi_vs_f.png").is_file() and (tmp_path / "diag" / "flip_vs_s.png").is_file()


def test_row_space_fraction_sees_only_the_readout_subspace():
    from textflow.diagnostics.rowspace import row_space_fraction

    w = torch.zeros(5, 6)
    w[:, :3] = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))  # the readout sees dims 0..2
    x = torch.randn(2, 4, 6, generator=torch.Generator().manual_seed(1))
    inside = torch.zeros(2, 4, 6)
    inside[..., :3] = torch.randn(2, 4, 3, generator=torch.Generator().manual_seed(2))
    outside = torch.zeros(2, 4, 6)
    outside[..., 3:] = torch.randn(2, 4, 3, generator=torch.Generator().manual_seed(3))
    readout = lambda v: v @ w.T  # noqa: E731
    assert row_space_fraction(readout, x, inside, competitors=4) == pytest.approx(1.0, abs=1e-5)
    assert row_space_fraction(readout, x, outside, competitors=4) == pytest.approx(0.0, abs=1e-6)


def test_mse_dabi_is_one_for_an_isometric_decoder_and_large_along_a_stretched_axis():
    from textflow.diagnostics import mse_dabi_curve

    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 8, generator=g)
    r = torch.randn(4, 3, 8, generator=g)
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=g))
    isometric = mse_dabi_curve(lambda z: z @ q, x, r, f_grid=(0.5, 1.0), generator=torch.Generator().manual_seed(1))
    assert isometric.ratio == pytest.approx([1.0, 1.0], rel=1e-4)
    stretch = torch.diag(torch.tensor([10.0] + [1.0] * 7))
    along = torch.zeros_like(r)
    along[..., 0] = 1.0
    sharp = mse_dabi_curve(lambda z: z @ stretch, x, along, f_grid=(1.0,), isotropic_draws=64,
                           generator=torch.Generator().manual_seed(1))
    # structured response 100, isotropic E[(99 u_0^2 + 1)] = 99/8 + 1 for a uniform unit direction
    assert sharp.ratio[0] == pytest.approx(100 / (99 / 8 + 1), rel=0.25)


def test_flip_curve_spread_against_the_densest_curve():
    from textflow.diagnostics.rollin import curve_spread

    reference = [{"s": s, "flip": f} for s, f in ((0.1, 0.1), (1.0, 0.2), (10.0, 0.4))]
    spread = curve_spread({16: reference, 4: [{"s": 1.0, "flip": 0.3}, {"s": math.sqrt(10.0), "flip": 0.3},
                                              {"s": 100.0, "flip": 0.9}]})
    # s = 1 matches a reference point (|0.3 - 0.2|); s = sqrt(10) is halfway in log s (0.3 vs 0.3);
    # s = 100 lies outside the reference range and is skipped
    assert spread["points"] == 2 and spread["abs_max"] == pytest.approx(0.1)
    assert spread["rel_max"] == pytest.approx(0.5) and spread["abs_median"] == pytest.approx(0.05)


class ScriptedDecoder(torch.nn.Module):
    """An AR stand-in with known decodes: committed tokens reproduce the text, soft inputs repeat token 0."""

    latent_dim = 3

    def __init__(self, reference):
        super().__init__()
        self.reference, self.seen = reference, None

    def generate(self, latents, *, feed, temperature):
        self.seen = latents
        tokens = self.reference.clone() if feed == "token" else torch.zeros_like(self.reference)
        return tokens, torch.nn.functional.one_hot(tokens, 5).float() * 10


def test_commit_ablation_scores_token_and_soft_decodes():
    reference = torch.tensor([[1, 2, 3, 4], [4, 3, 2, 1]])
    result = commit_ablation(ScriptedDecoder(reference), torch.zeros(2, 4, 3), reference)
    assert result["token"].token_acc == 1.0 and result["token"].adjacent_repeat == 0.0
    assert result["soft"].token_acc == 0.0 and result["soft"].adjacent_repeat == 1.0
    assert result["soft"].unigram_entropy == 0.0 < result["token"].unigram_entropy
    assert result["token"].mean_confidence == pytest.approx(torch.softmax(torch.tensor([10.0, 0, 0, 0, 0]), 0)[0].item())


def test_commit_ablation_unstandardises_a_two_stage_flow_latent():
    from textflow.autoencoders import NormalizedAutoencoder
    from textflow.readouts import AutoregressiveReadout

    reference = torch.tensor([[1, 2]])
    inner = ScriptedDecoder(reference)
    wrapped = NormalizedAutoencoder(autoencoder=inner)
    wrapped.set_statistics(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 2.0, 2.0]))
    AutoregressiveReadout().commit_ablation(wrapped, torch.ones(1, 2, 3), reference)
    assert torch.allclose(inner.seen, torch.tensor([3.0, 4.0, 5.0]).expand(1, 2, 3))


def test_commit_ablation_refuses_a_parallel_readout():
    with pytest.raises(TypeError, match="autoregressive decoder"):
        commit_ablation(object(), torch.zeros(1, 2, 3), torch.zeros(1, 2, dtype=torch.long))


def test_noise_streams_never_replay_the_weight_initialisation_stream():
    """The bug this guards against: seed_everything(0) initialised a 128-d embedding table from the
    stream Generator().manual_seed(0) starts, and the diagnostics drew their noise from that same
    stream, so the noise at position (b, l) was the initial embedding row of token b * L + l."""
    from textflow.noise import sample_seed, stream_generator, stream_seed

    torch.manual_seed(0)
    table = torch.nn.Embedding(64, 16).weight.detach()
    replayed = torch.randn((4, 16, 16), generator=torch.Generator().manual_seed(0)).flatten(0, 1)
    assert torch.equal(replayed, table)  # the coincidence itself, as torch behaves
    drawn = torch.randn((4, 16, 16), generator=stream_generator(0, "diagnostics/terminal")).flatten(0, 1)
    cos = torch.nn.functional.cosine_similarity(drawn, table, dim=-1)
    assert cos.abs().max() < 0.9
    seeds = {stream_seed(s, name, i) for s in range(3) for name in ("a", "b") for i in range(3)} | {sample_seed(0, 0)}
    assert len(seeds) == 19 and all(0 <= x < 2**63 and x > 2**20 for x in seeds)
