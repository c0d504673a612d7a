"""Readout kinds (textflow.readouts): each kind decodes, measures and reports on a tiny model, a
two-stage wrapper has its inner autoencoder's kind, and a made-up fourth kind runs through generation,
the training callback, the one-command report and a whole sampling run without an edit anywhere else."""

from __future__ import annotations

import json
import types
from dataclasses import dataclass
from typing import Optional

import pytest
import torch
from omegaconf import OmegaConf

from textflow.autoencoders import (EmbeddingAutoencoder, ImageAutoencoder, LatentARAutoencoder, LatentAutoencoder,
                                   NormalizedAutoencoder)
from textflow.backbones import DiT
from textflow.denoiser import FlowDenoiser
from textflow.errors import ConfigError
from textflow.paths import LinearPath
from textflow.readouts import (AutoregressiveDiagnostics, AutoregressiveReadout, ContinuousDiagnostics,
                               ContinuousReadout, DiagnosticsResult, ParallelDiagnostics, ParallelReadout, ReadoutKind)
from textflow.sampling.generate import generate
from textflow.readouts.sample_report import SampleReport
from textflow.samplers import Sampler

VOCAB, DIM, LEN = 24, 8, 8


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def denoiser_for(autoencoder: torch.nn.Module) -> FlowDenoiser:
    torch.manual_seed(0)
    backbone = DiT(latent_dim=autoencoder.latent_dim, max_len=16, width=16, depth=1, heads=2, mlp_ratio=2.0)
    with torch.no_grad():  # adaLN-Zero starts at exactly zero output: give the backbone something to say
        for p in backbone.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    return FlowDenoiser(backbone=backbone.eval(), path=LinearPath(), autoencoder=autoencoder.eval())


def embed() -> EmbeddingAutoencoder:
    torch.manual_seed(0)
    return EmbeddingAutoencoder(vocab_size=VOCAB, latent_dim=DIM)


def ar() -> LatentARAutoencoder:
    torch.manual_seed(0)
    return LatentARAutoencoder(vocab_size=VOCAB, latent_dim=DIM, width=16, encoder_depth=1, decoder_depth=1,
                               heads=2, max_len=16)


def smooth() -> ImageAutoencoder:
    torch.manual_seed(0)
    return ImageAutoencoder(pixels=64, latent_tokens=4, latent_dim=DIM, hidden=16)


IDS = torch.randint(0, VOCAB, (3, LEN), generator=torch.Generator().manual_seed(1))


# ------------------------------------------------------------------------------------------ each kind
def test_each_autoencoder_names_its_kind_and_a_two_stage_wrapper_delegates():
    assert isinstance(embed().readout_kind, ParallelReadout)
    assert isinstance(ar().readout_kind, AutoregressiveReadout)
    assert isinstance(smooth().readout_kind, ContinuousReadout)
    inner = ar()
    wrapped = NormalizedAutoencoder(autoencoder=inner)
    assert wrapped.readout_kind is inner.readout_kind and wrapped.unwrap() is inner
    wrapped.set_statistics(torch.full((DIM,), 1.0), torch.full((DIM,), 2.0))
    assert torch.equal(wrapped.to_unwrapped(torch.zeros(1, 2, DIM)), torch.ones(1, 2, DIM))
    assert embed().unwrap() is not None and ParallelReadout().decodes_tokens and not ContinuousReadout().decodes_tokens


def test_parallel_readout_decodes_measures_and_reports(tmp_path):
    den = denoiser_for(embed())
    kind = den.autoencoder.readout_kind
    latents = den.embed(IDS)
    assert torch.equal(kind.decode(den, latents), den.readout(latents).argmax(-1))
    result = kind.diagnose(den, IDS, steps=(2, 4), seed=0)
    assert isinstance(result, ParallelDiagnostics) and result.checkpoint is None
    data = result.as_dict()
    assert list(data)[:6] == ["blocks", "seq_len", "latent_dim", "clean_readout_acc", "clean_readout_ce", "tube"]
    assert [row["K"] for row in data["flip"]] == [2, 4] and set(data["flip_curves"]) == {"2", "4"}
    assert set(data["dabi"]) == {"residual/flip", "residual/ce", "boundary/flip", "boundary/ce"}
    json.dumps(data)  # JSON-ready
    scalars = result.scalars()
    for key in ("diag/clean_readout_acc", "diag/p_m0", "diag/flip_K2", "diag/tube_pred_K4", "diag/tube_tail_K4",
                "diag/alignment_cos2", "diag/row_space_residual"):
        assert key in scalars, key
    result.checkpoint = "CKPT"
    assert result.markdown().startswith("# Diagnostics of `CKPT`") and "| K | t | s(t) |" in result.markdown()
    assert list(result.as_dict())[0] == "checkpoint"
    assert [p.name for p in result.figures(tmp_path)] == ["dabi_vs_f.png", "flip_vs_s.png"]
    # the training callback's subset: flip and DABI switched off leave the clean readout and the tube law
    small = kind.monitor(den, IDS, steps=(2,), flip=False, dabi=False)
    assert small.flip is None and small.dabi is None and "diag/flip_K2" not in small.scalars()
    assert "flip" not in small.as_dict() and small.figures(tmp_path / "none") == []
    assert kind.cci_readout(den.autoencoder, LEN) == 0.0
    with pytest.raises(ConfigError, match="readout_feed='soft' needs an autoregressive readout.*EmbeddingAutoencoder"):
        kind.set_feed(den.autoencoder, "soft")


def test_autoregressive_readout_decodes_measures_and_reports():
    den = denoiser_for(ar())
    kind = den.autoencoder.readout_kind
    latents = den.embed(IDS)
    assert torch.equal(kind.decode(den, latents), den.autoencoder.generate(latents)[0])  # greedy commits
    result = kind.diagnose(den, IDS, steps=(2, 4))
    assert isinstance(result, AutoregressiveDiagnostics)
    assert result.cci_readout == pytest.approx((LEN - 1) / LEN)
    assert set(result.ablation) == {"clean", "K2", "K4"} and set(result.ablation["K2"]) == {"token", "soft"}
    data = result.as_dict()
    assert data["autoregressive"] and data["ablation"]["clean"]["soft"]["feed"] == "soft"
    json.dumps(data)
    assert set(result.scalars()) == {"diag/cci_readout"} | {f"diag/ablation_{n}_{f}_acc" for n in ("clean", "K2", "K4")
                                                            for f in ("token", "soft")}
    assert "Commit ablation" in result.markdown()
    assert set(kind.monitor(den, IDS, steps=(2, 4)).ablation) == {"clean", "K2"}  # steps[0] only in training
    assert kind.monitor(den, IDS, ablation=False) is None
    kind.set_feed(den.autoencoder, "soft")  # the commit ablation: nothing committed before the final readout
    assert den.autoencoder.feed == "soft" and kind.cci_readout(den.autoencoder, LEN) == 0.0
    with pytest.raises(ConfigError, match="readout_feed"):
        kind.set_feed(den.autoencoder, "hard")


def test_continuous_readout_decodes_measures_and_reports(tmp_path):
    den = denoiser_for(smooth())
    kind = den.autoencoder.readout_kind
    images = torch.rand(5, 64, generator=torch.Generator().manual_seed(0))
    latents = den.embed(images)
    out = kind.decode(den, latents)
    assert out.shape == (5, 64) and out.is_floating_point()
    result = kind.diagnose(den, images, steps=(2, 4))
    assert isinstance(result, ContinuousDiagnostics)
    data = result.as_dict()
    assert data["continuous"] and set(data["dabi_by_K"]) == {"2", "4"} and data["dabi"] == {
        "residual/mse": data["dabi_by_K"]["2"]}
    assert set(result.scalars()) == {"diag/clean_recon_mse", "diag/dabi_residual_mse_K2_f1",
                                     "diag/dabi_residual_mse_K4_f1"}
    assert "continuous decoder" in result.markdown()
    assert [p.name for p in result.figures(tmp_path, prefix="s1_")] == ["s1_dabi_vs_f.png"]
    assert kind.monitor(den, images, dabi=False) is None and kind.trajectory_recorder(den.path) is None


def test_text_and_image_samples_are_reported_by_their_kinds(tmp_path, capsys):
    tokenizer = types.SimpleNamespace(decode_batch=lambda seqs: [" ".join(map(str, s)) for s in seqs], eos_token=None)
    cfg = OmegaConf.create({"evaluation": {"_target_": "textflow.evaluation.evaluate.Evaluator", "n_boot": 10},
                            "reference": False, "seed": 0, "print_samples": 1})
    sampler = Sampler(name="ode", steps=2)
    den = denoiser_for(embed())
    gen = generate(den, sampler, num_samples=2, seq_len=LEN, seed=0, batch_size=2)
    run = types.SimpleNamespace(cfg=cfg, sampler=sampler, denoiser=den, device=torch.device("cpu"), seq_len=LEN,
                                prompts=None, loaded=types.SimpleNamespace(tokenizer=tokenizer, path="ckpt"))
    report = den.autoencoder.readout_kind.report_samples(run, gen)
    assert report.samples_file == "samples.jsonl" and len(report.rows) == 2
    assert report.rows[0]["token_ids"] == gen.ids[0].tolist()
    assert report.metrics["diag/cci_readout"] == 0.0 and "unigram_entropy" in report.metrics
    report.show()
    assert "--- sample 0 ---" in capsys.readouterr().out

    den = denoiser_for(smooth())
    gen = generate(den, sampler, num_samples=4, seq_len=4, seed=0, batch_size=4)
    run.denoiser, run.loaded = den, types.SimpleNamespace(path="ckpt", config=OmegaConf.create(
        {"data": {"_target_": "test_readouts.TinyImages"}}))
    report = den.autoencoder.readout_kind.report_samples(run, gen)
    assert report.rows is None and report.samples_file == "samples.png" and "frechet" in report.metrics
    report.figures["samples.png"](tmp_path / "samples.png")
    assert (tmp_path / "samples.png").is_file()


class TinyImages:
    def images(self, split: str) -> torch.Tensor:
        return torch.rand(6, 64, generator=torch.Generator().manual_seed(0 if split == "val" else 1))


# ---------------------------------------------------------------------------- a made-up fourth kind
@dataclass
class SignDiagnostics(DiagnosticsResult):
    positive: float
    checkpoint: Optional[str] = None

    def as_dict(self) -> dict:
        return self._keyed({"sign": True, "positive": self.positive})

    def scalars(self) -> dict[str, float]:
        return {"diag/sign_positive": self.positive}

    def markdown(self) -> str:
        return f"# Sign readout of `{self.checkpoint}`: {self.positive:.3f} positive\n"


class SignReadout(ReadoutKind):
    """A binary readout: each position's output is whether its first latent coordinate is positive."""

    name = "sign"
    decodes_tokens = False

    def decode(self, denoiser, latents):
        return (latents[..., 0] > 0).long()

    def heldout(self, loaded, *, blocks):
        return torch.randn(blocks, LEN, DIM, generator=torch.Generator().manual_seed(0))

    def diagnose(self, denoiser, data, *, steps=(4,), seed=0):
        return SignDiagnostics(positive=float(self.decode(denoiser, denoiser.embed(data)).float().mean()))

    def monitor(self, denoiser, data, *, steps=(4,), seed=0, flip=True, dabi=True, ablation=True, dabi_f=(1.0,),
                dabi_draws=1):
        return self.diagnose(denoiser, data, steps=steps, seed=seed)

    def report_samples(self, run, generation, recorder=None):
        metrics = {"positive": float(generation.ids.float().mean()), "nfe": generation.nfe}
        return SampleReport(metrics=metrics, objects={"generation": generation}, samples_file="metrics.json",
                            show=lambda: print(f"positive {metrics['positive']:.3f}"))


class SignAutoencoder(LatentAutoencoder):
    readout_kind = SignReadout()

    def __init__(self):
        super().__init__()
        self.vocab_size, self.latent_dim = None, DIM
        self.scale = torch.nn.Parameter(torch.ones(()))

    def encode(self, data):
        return data * self.scale

    def decode(self, latents):
        return latents * self.scale

    def loss(self, data, *, generator=None):
        return {"loss": self.scale.sum() * 0}


def test_a_new_kind_needs_no_edit_anywhere_else(tmp_path, monkeypatch, capsys):
    from textflow.callbacks.base import is_text_flow
    from textflow.callbacks.diagnostics import ReadoutDiagnostics
    from textflow.diagnostics import report
    from textflow.sampling import run as sampling_run
    from textflow.sampling.setup import SamplingRun

    den = denoiser_for(SignAutoencoder())
    sampler = Sampler(name="sde", steps=2, gamma=1.0)
    gen = generate(den, sampler, num_samples=3, seq_len=LEN, seed=0, batch_size=2)  # decoded by the new kind
    assert gen.ids.shape == (3, LEN) and set(gen.ids.unique().tolist()) <= {0, 1}

    # the training callback logs its scalars; the text-only callbacks leave it alone
    module = types.SimpleNamespace(denoiser=lambda use_ema=True: den, device=torch.device("cpu"), logged={},
                                   run_info={"tokenizer": "{}"})
    module.log = lambda key, value, **kw: module.logged.__setitem__(key, value)
    trainer = types.SimpleNamespace(sanity_checking=False, is_global_zero=True, default_root_dir=str(tmp_path),
                                    loggers=[], global_step=0)
    callback = ReadoutDiagnostics(every_n_validations=1)
    callback.on_validation_batch_end(trainer, module, None, torch.randn(4, LEN, DIM), 0)
    callback.on_validation_epoch_end(trainer, module)
    assert set(module.logged) == {"diag/sign_positive"} and not is_text_flow(module)

    # the one-command report
    loaded = types.SimpleNamespace(module=types.SimpleNamespace(net={"autoencoder": den.autoencoder}),
                                   denoiser=lambda use_ema=True: den)
    monkeypatch.setattr(report, "load_run", lambda ckpt: loaded)
    result = report.diagnose("sign.ckpt", blocks=2)
    assert result.as_dict() == {"checkpoint": "sign.ckpt", "sign": True, "positive": result.positive}
    assert result.markdown().startswith("# Sign readout of `sign.ckpt`")

    # a whole sampling run: generation, the kind's report, one unit of files with one run id, the printout
    cfg = OmegaConf.create({"num_samples": 3, "batch_size": 3, "seed": 0, "diagnostics": True, "logger": None,
                            "dirs": {"output_dir": str(tmp_path / "run")}})
    (tmp_path / "run").mkdir()
    setup = SamplingRun(cfg=cfg, sampler=sampler, loaded=loaded, denoiser=den, device=torch.device("cpu"),
                        seq_len=LEN)
    monkeypatch.setattr(sampling_run, "prepare", lambda cfg, sampler: setup)
    metrics, objects = sampling_run.sample_run(cfg, sampler)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved == metrics and saved["nfe"] == 2 and saved["run_id"] and objects["generation"].ids.shape == (3, LEN)
    assert "positive" in capsys.readouterr().out
    assert den.autoencoder.readout_kind.cci_readout(den.autoencoder, LEN) == 0.0
    with pytest.raises(ConfigError, match="needs an autoregressive readout.*SignAutoencoder"):
        den.autoencoder.readout_kind.set_feed(den.autoencoder, "soft")
