"""Each benchmark runs on tiny settings with one repetition (timings are never asserted)."""

from __future__ import annotations

import json
import statistics

import pytest
import torch
import torch.nn.functional as F

import train as train_entry
from conftest import compose_config, tiny_train_overrides
from textflow.bench.__main__ import main as bench_main
from textflow.errors import ConfigError


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory, cache_dir):
    out = tmp_path_factory.mktemp("bench-train")
    _, objs = train_entry.run(compose_config("train", tiny_train_overrides(out, cache_dir) + ["trainer.max_steps=2"]))
    return objs["checkpoint"]


def test_sampling_benchmark_runs(tiny_ckpt, tmp_path):
    bench_main(["sampling", "--ckpt", str(tiny_ckpt), "--samplers", "ode,sde,commit", "--steps", "1,2",
                "--batch-size", "2", "--repeats", "1", "--out", str(tmp_path)])
    result = json.loads(next(tmp_path.glob("sampling-*.json")).read_text())
    rows = result["rows"]
    assert [(r["sampler"], r["K"], r["nfe"]) for r in rows] == [("ode", 1, 1), ("ode", 2, 2), ("sde", 1, 1),
                                                                ("sde", 2, 2), ("commit", 1, 1), ("commit", 2, 2)]
    assert all(r["tokens_per_s"] > 0 and 0 < r["fraction_of_peak"] for r in rows) and "machine" in result
    assert result["machine"]["cpu_model"] and result["machine"]["cpu_capability"]  # which CPU kind ran it
    # the peak is the fastest GEMM timed (PyTorch's own and, where available, oneDNN's): never below PyTorch's
    assert all(r["fraction_of_peak"] <= r["fraction_of_aten_peak"] and r["cpu_linear"] == "onednn" for r in rows)
    assert all(r["cpu_gelu"] == "separate" for r in rows)  # the placement it ran (tests/conftest.py's)
    assert rows[0]["peak_kernel"] in ("aten", "onednn")
    # the peak is timed in the sampling rounds: the share is the median of each round's ratio
    for r in rows:
        assert len(r["times_s"]) == len(r["peak_rounds_gflops"]) == r["repeats"] == 1
        assert r["fraction_of_peak"] == pytest.approx(r["gflop"] / r["times_s"][0] / r["peak_rounds_gflops"][0])
        assert r["peak_gflops"] == pytest.approx(r["peak_rounds_gflops"][0])
    by = {(r["sampler"], r["K"]): r for r in rows}
    call = by[("ode", 2)]["gflop"] - by[("ode", 1)]["gflop"]  # one more network call, same final decode
    assert call > 0 and by[("sde", 2)]["gflop"] == pytest.approx(by[("ode", 2)]["gflop"])
    readout = 2 * by[("ode", 1)]["gflop"] - by[("ode", 2)]["gflop"]  # the final decode, counted through the head
    assert readout > 0  # commit also reads the logits at each of its 2 steps:
    assert by[("commit", 2)]["gflop"] - by[("ode", 2)]["gflop"] == pytest.approx(2 * readout)


def test_round_robin_timing_rotates_the_order_and_summarises_each_callable():
    from textflow.bench.runner import time_call, time_round_robin

    calls = []
    fns = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    timings = time_round_robin(fns, warmup=1, repeats=4)
    assert calls[:3] == list("abc")  # the warm-up, then each round starts one further along
    assert calls[3:] == list("abc") + list("bca") + list("cab") + list("abc")
    assert set(timings) == set("abc")
    assert all(t["repeats"] == 4 and 0 <= t["min_s"] <= t["median_s"] <= t["max_s"] for t in timings.values())
    kept = time_round_robin(fns, warmup=0, repeats=3, keep_times=True)
    assert all(len(t["times_s"]) == 3 and min(t["times_s"]) == t["min_s"] for t in kept.values())
    assert "times_s" not in timings["a"]
    single = []
    assert time_call(lambda: single.append(1), warmup=2, repeats=3)["repeats"] == 3 and len(single) == 5


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusals of a machine without CUDA")
def test_sampling_benchmark_refuses_cuda_settings_without_cuda(tiny_ckpt, tmp_path):
    args = ["sampling", "--ckpt", str(tiny_ckpt), "--steps", "1", "--batch-size", "1", "--repeats", "1", "--out", str(tmp_path)]
    with pytest.raises(ConfigError, match="--bf16 samples under CUDA autocast; it needs --device cuda, not 'cpu'"):
        bench_main([*args, "--bf16"])
    with pytest.raises(ConfigError, match="device='cuda' was asked for but no CUDA device is available"):
        bench_main([*args, "--device", "cuda"])


def test_sampling_benchmark_takes_knobs_per_sampler(tiny_ckpt, tmp_path):
    from textflow.samplers.spec import parse_sampler

    bench_main(["sampling", "--ckpt", str(tiny_ckpt), "--samplers", "adaptive:levels=4:gamma=0.5", "--steps", "2",
                "--batch-size", "2", "--repeats", "1", "--cpu-linear", "aten", "--out", str(tmp_path)])
    (row,) = json.loads(next(tmp_path.glob("sampling-*.json")).read_text())["rows"]
    assert row["sampler"] == "adaptive:levels=4:gamma=0.5" and row["nfe"] == 2
    assert row["device"] == "cpu" and row["bf16"] is False and row["cpu_linear"] == "aten"
    assert row["cpu_gelu"] is None  # no oneDNN path: no placement
    with pytest.raises(ValueError, match="'levels' is not knob=value"):
        parse_sampler("adaptive:levels")
    with pytest.raises(ConfigError, match="sampler.levels"):
        bench_main(["sampling", "--ckpt", str(tiny_ckpt), "--samplers", "adaptive:levels=0", "--steps", "2",
                    "--batch-size", "2", "--repeats", "1", "--out", str(tmp_path)])


def test_judge_benchmark_runs_with_a_local_judge_folder(tmp_path, cache_dir):
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    from conftest import FIXTURE_CORPUS
    from textflow.data import TrainedBPE

    texts = [p.read_text() for p in sorted((FIXTURE_CORPUS / "train").glob("*.txt"))]
    tok = TrainedBPE(vocab_size=300).build(texts=texts, cache_dir=str(cache_dir), corpus_key="bench")
    folder = tmp_path / "tiny-judge"
    PreTrainedTokenizerFast(tokenizer_object=tok.tokenizer, bos_token="<|endoftext|>",
                            eos_token="<|endoftext|>").save_pretrained(folder)
    GPT2LMHeadModel(GPT2Config(vocab_size=tok.vocab_size, n_positions=64, n_embd=16, n_layer=1,
                               n_head=2)).save_pretrained(folder)
    bench_main(["judge", "--judge", str(folder), "--num-samples", "4", "--tokens", "16", "--repeats", "1",
                "--out", str(tmp_path / "out"), "--cache-dir", str(cache_dir)])
    row = json.loads(next((tmp_path / "out").glob("judge-*.json")).read_text())["rows"][0]
    assert row["samples"] == 4 and row["tokens_per_sample"] == 16 and row["median_s"] > 0


def test_diagnostics_benchmark_runs(tiny_ckpt, tmp_path):
    bench_main(["diagnostics", "--ckpt", str(tiny_ckpt), "--blocks", "2", "--repeats", "1", "--out", str(tmp_path)])
    row = json.loads(next(tmp_path.glob("diagnostics-*.json")).read_text())["rows"][0]
    assert row["train_step_s"] > 0 and row["diagnostics_s"] > 0 and row["overhead"] > 0


def test_train_benchmark_runs(tmp_path, cache_dir):
    from conftest import ROOT

    bench_main(["train", "--preset", "dit_tiny", "--steps", "2", "--batch", "4", "--seq-len", "16", "--out",
                str(tmp_path), "--cache-dir", str(cache_dir), "--override", "data=fixture",
                "--override", f"dirs.root_dir={ROOT}"])
    row = json.loads(next(tmp_path.glob("train-*.json")).read_text())["rows"][0]
    assert row["tokens_per_s"] > 0 and 0 < row["mfu"] and row["peak_gflops"] > 0 and row["peak_kernel"] in ("aten", "onednn")
    # the peak is timed before and after the run, and the faster timing counts
    assert row["peak_gflops"] == max(row["peak_before_gflops"], row["peak_after_gflops"])


def test_peer_benchmark_matches_torchdiffeq_and_the_reference_sde(tiny_ckpt, tmp_path):
    pytest.importorskip("torchdiffeq")
    bench_main(["peer", "--ckpt", str(tiny_ckpt), "--steps", "1,3", "--batch-size", "2", "--repeats", "1",
                "--out", str(tmp_path)])
    rows = json.loads(next(tmp_path.glob("peer-*.json")).read_text())["rows"]
    assert [(r["peer"], r["K"]) for r in rows] == [("reference loop", 1), ("torchdiffeq euler", 1),
                                                  ("reference loop", 3), ("torchdiffeq euler", 3)]
    assert all(r["max_abs_diff"] < 1e-5 for r in rows)


def test_scaling_benchmark_runs(tmp_path):
    bench_main(["scaling", "--lengths", "8,16", "--steps", "1,2", "--batch-size", "2", "--width", "16", "--depth", "1",
                "--heads", "2", "--repeats", "1", "--out", str(tmp_path)])
    rows = json.loads(next(tmp_path.glob("scaling-*.json")).read_text())["rows"]
    assert len(rows) == 4 and all(r["flow_tokens_per_s"] > 0 and r["ar_tokens_per_s"] > 0 for r in rows)
    assert (tmp_path / "scaling-cpu.png").is_file()


def test_ar_baseline_cache_matches_recomputation():
    from textflow.bench.ar_baseline import CausalLM

    model = CausalLM(vocab_size=30, width=16, depth=2, heads=2, max_len=16).eval()
    prompt = torch.zeros(2, 1, dtype=torch.long)
    assert torch.equal(model.generate(prompt, 8), model.generate(prompt, 8, use_cache=False))


def test_readout_flops_count_what_each_readout_computes():
    from textflow.autoencoders import EmbeddingAutoencoder, ImageAutoencoder, OneHotAutoencoder
    from textflow.bench.train import readout_forward_flops

    embed = EmbeddingAutoencoder(vocab_size=100, latent_dim=8)
    assert readout_forward_flops(embed, tokens=10) == 2 * 100 * 8 * 10
    # the one-hot readout is a scaling, no matmul
    assert readout_forward_flops(OneHotAutoencoder(vocab_size=100), tokens=10) == 100 * 10
    image = ImageAutoencoder()
    per_image = sum(2 * m.weight.numel() for m in image.decoder if isinstance(m, torch.nn.Linear))
    assert readout_forward_flops(image, tokens=3 * image.latent_tokens) == 3 * per_image


def test_vocab_benchmark_times_each_vocabulary_against_the_smallest(tmp_path):
    from textflow.bench.vocab import MIN_ROUNDS

    bench_main(["vocab", "--vocabs", "512,128", "--batch", "2", "--seq-len", "8", "--blocks", "2", "--repeats", "1",
                "--out", str(tmp_path)])
    rows = json.loads(next(tmp_path.glob("vocab-*.json")).read_text())["rows"]
    assert [r["vocab"] for r in rows] == [128, 512]  # sorted: the smallest is the reference
    assert rows[0]["rest_vs_small"] == 1.0 and rows[1]["readout_gflop_per_step"] == 4 * rows[0]["readout_gflop_per_step"]
    assert all(r["readout_s"] > 0 and r["plain_readout_s"] > 0 for r in rows)
    for r in rows:  # the rest: the median over steps of each step's time minus its time in the readout kernel
        assert len(r["rest_rounds_s"]) == MIN_ROUNDS and r["rest_s"] == statistics.median(r["rest_rounds_s"])
        assert 0 < r["readout_in_step_s"] < r["train_step_s"] and "rest_paired_s" in r
    for r in rows:
        assert r["train_step_s"] > 0 and r["diagnostics_s"] > 0 and isinstance(r["met"], bool)
        assert r["overhead"] == r["diagnostics_s"] / (200 * r["train_step_s"])
        assert r["optimizer_s"] > 0 and r["ema_s"] > 0
        assert r["rest_other_s"] == pytest.approx(r["rest_s"] - r["optimizer_s"] - r["ema_s"])
        flops_per_s = r["step_tflop"] * 1e12 / r["train_step_s"]
        assert r["mfu"] == pytest.approx(flops_per_s / (r["peak_gflops"] * 1e9))
    assert 0 < rows[0]["step_tflop"] < rows[1]["step_tflop"]


def test_readout_seconds_times_the_kernels_forward_and_backward_and_restores_it():
    from textflow.bench.vocab import readout_seconds
    from textflow.kernels.cross_entropy import _LinearCrossEntropy, linear_cross_entropy

    forward, backward = _LinearCrossEntropy.forward, _LinearCrossEntropy.backward
    features, weight = torch.randn(6, 4, requires_grad=True), torch.randn(10, 4, requires_grad=True)
    targets = torch.randint(0, 10, (6,))
    with readout_seconds() as spent:
        loss = linear_cross_entropy(features, weight, None, targets)[0]
        assert len(spent) == 1
        loss.backward()
    assert len(spent) == 2 and all(s > 0 for s in spent)
    assert torch.allclose(loss, F.cross_entropy(features @ weight.T, targets))
    assert (_LinearCrossEntropy.forward, _LinearCrossEntropy.backward) == (forward, backward)
    linear_cross_entropy(features, weight, None, targets)[0].backward()
    assert len(spent) == 2  # outside the block nothing is timed


def test_vocab_benchmark_on_the_one_hot_latent_counts_its_vocabulary_wide_projections(tmp_path):
    bench_main(["vocab", "--vocabs", "256,64", "--preset", "dit_tiny", "--batch", "2", "--seq-len", "8",
                "--blocks", "2", "--repeats", "1", "--override", "experiment=onehot", "--out", str(tmp_path)])
    rows = json.loads(next(tmp_path.glob("vocab-*.json")).read_text())["rows"]
    assert [r["vocab"] for r in rows] == [64, 256] and [r["latent_dim"] for r in rows] == [64, 256]
    width, tokens = compose_config("train", ["backbone=dit_tiny"]).backbone.width, 2 * 8
    # forward + backward (3x): the V x width input and output projections, the one-hot readout (V a token)
    extra = 3 * (2 * 2 * width + 1) * (256 - 64) * tokens
    assert rows[1]["step_tflop"] - rows[0]["step_tflop"] == pytest.approx(extra / 1e12, rel=1e-6)
    assert rows[1]["readout_gflop_per_step"] == pytest.approx(3 * 256 * tokens / 1e9)  # V a position


def _report(path, rows):
    import csv

    cols = ["sampler", "steps", "gamma", "gen_ppl", "gen_ppl_ci95", "unigram_entropy", "mode_collapse", "ckpt_path",
            "run"]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=cols)
        writer.writeheader()
        for r in rows:
            writer.writerow({c: r.get(c, "") for c in cols})
    return path


def test_matched_benchmark_picks_the_smallest_matching_k_or_the_best_healthy_point(tmp_path):
    from textflow.bench.matched import pick, read_reports
    from textflow.errors import ConfigError

    twin = {"sampler": "ar_twin text", "gen_ppl": "585", "gen_ppl_ci95": "[510, 673]", "ckpt_path": "twin.ckpt"}
    point = lambda s, k, ppl, collapse=False: {"sampler": s, "steps": k, "gen_ppl": ppl, "gen_ppl_ci95": "[1, 2]",  # noqa: E731
                                               "unigram_entropy": "3.5", "mode_collapse": str(collapse)}
    first = _report(tmp_path / "a.csv", [point("sde", 4, 900), point("sde", 8, 650), point("sde", 32, 600),
                                         point("ode", 4, 4000), point("ode", 32, 3000), twin,
                                         {"sampler": "heldout text", "gen_ppl": "118"}])
    second = _report(tmp_path / "b.csv", [point("adaptive", 1, 250, True), point("adaptive", 4, 500, True),
                                          point("sde", 4, 640)])  # no twin row: fine, the first has one
    rows, twin_row = read_reports([first, second])
    assert twin_row["ckpt_path"] == "twin.ckpt" and {r["sampler"] for r in rows} == {"sde", "ode", "adaptive"}
    picks = {p["sampler"]: (int(p["steps"]), float(p["gen_ppl"]), p["status"]) for p in pick(rows, 673.0)}
    assert picks == {"sde": (4, 640.0, "matched"),  # the smallest K at or below the twin's upper end
                     "ode": (32, 3000.0, "best"),  # never matched: its best point
                     "adaptive": (1, 250.0, "best (collapsed)")}  # low gen-PPL from collapse is not a match
    low_entropy = dict(point("sde", 2, 300), unigram_entropy="2.9")  # below the twin's upper end, but 0.8 nats short
    banded = {p["sampler"]: (int(p["steps"]), p["status"])
              for p in pick([*rows, low_entropy], 673.0, entropy_band=(3.4, 4.0))}
    assert banded == {"sde": (4, "matched"), "ode": (32, "best"), "adaptive": (1, "best (collapsed)")}
    only_low = pick([low_entropy], 673.0, entropy_band=(3.4, 4.0))
    assert [(p["steps"], p["status"]) for p in only_low] == [(2, "best (outside the entropy band)")]
    assert pick([low_entropy], 673.0)[0]["status"] == "matched"  # without a band (no held-out row) it matches
    with pytest.raises(ConfigError, match="no --report has an AR-twin row"):
        read_reports([second])
    with pytest.raises(ConfigError, match="does not exist"):
        read_reports([tmp_path / "missing.csv"])
    other = _report(tmp_path / "c.csv", [point("sde", 4, 640), {**twin, "ckpt_path": "other.ckpt"}])
    with pytest.raises(ConfigError, match="compare one twin at a time"):
        read_reports([first, other])


def test_ddp_benchmark_needs_the_one_process_baseline():
    from textflow.bench.ddp import run
    from textflow.errors import ConfigError

    with pytest.raises(ConfigError, match="--devices 2,4 has no 1"):
        run(devices=[2, 4])


@pytest.mark.slow
def test_ddp_benchmark_runs_one_and_two_gloo_processes(tmp_path, cache_dir):
    from conftest import ROOT

    bench_main(["ddp", "--devices", "1,2", "--preset", "dit_tiny", "--steps", "4", "--batch", "4", "--seq-len", "16",
                "--out", str(tmp_path), "--cache-dir", str(cache_dir), "--override", "data=fixture",
                "--override", f"dirs.root_dir={ROOT}"])
    rows = json.loads(next(tmp_path.glob("ddp-*.json")).read_text())["rows"]
    assert [r["devices"] for r in rows] == [1, 2] and rows[0]["efficiency"] == 1.0
    assert rows[1]["tokens_per_s"] > 0 and rows[1]["efficiency"] > 0


def test_parallel_sampling_refuses_a_missing_baseline_and_an_unknown_preset():
    from textflow.bench.parallel_sampling import preset_dims, run
    from textflow.errors import ConfigError

    with pytest.raises(ConfigError, match="--devices 2 has no 1"):
        run(devices=[2])
    with pytest.raises(ConfigError, match="--preset 'dit_huge' is not a backbone preset; choose one of dit_base"):
        preset_dims("dit_huge")
    assert preset_dims("dit_small") == {"width": 256, "depth": 4, "heads": 4}


def test_parallel_sampling_runs_one_and_two_processes(tmp_path):
    """Two concurrent ``bench scaling`` processes: their tokens/s are summed and set against one process's."""
    bench_main(["parallel-sampling", "--devices", "1,2", "--preset", "dit_tiny", "--k", "2", "--batch", "2",
                "--seq-len", "8", "--repeats", "1", "--out", str(tmp_path)])
    rows = json.loads(next(tmp_path.glob("parallel-sampling-*.json")).read_text())["rows"]
    assert [r["devices"] for r in rows] == [1, 2]
    assert rows[0]["flow_efficiency"] == rows[0]["ar_efficiency"] == 1.0
    assert all(r["flow_tokens_per_s"] > 0 and r["ar_tokens_per_s"] > 0 for r in rows)
    assert rows[1]["flow_efficiency"] == pytest.approx(rows[1]["flow_tokens_per_s"] / (2 * rows[0]["flow_tokens_per_s"]))


def test_matched_benchmark_rebuilds_the_points_time_grid(tmp_path):
    """A point sampled on FLM's grid is re-timed on FLM's grid: the class from metrics.json, its knobs from the
    point's .hydra/config.yaml (nulls are fitted to the model later); an unknown grid is refused."""
    from textflow.bench.matched import _sampler_of
    from textflow.errors import ConfigError
    from textflow.time import ArgmaxAccuracyTime, UniformTime

    def point(name, time, config=None):
        folder = tmp_path / name
        (folder / ".hydra").mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps({"sampler": {"name": "sde", "steps": 4, "gamma": 0.25,
                                                                     "time": time}}))
        if config is not None:
            (folder / ".hydra" / "config.yaml").write_text(config)
        return {"report_dir": str(tmp_path), "run": name}

    flm = _sampler_of(point("flm", "ArgmaxAccuracyTime", "sampler:\n  time:\n    _target_: "
                                   "textflow.time.ArgmaxAccuracyTime\n    vocab_size: null\n    scale: 2.0\n"))
    assert isinstance(flm.time, ArgmaxAccuracyTime) and (flm.time.vocab_size, flm.time.scale) == (None, 2.0)
    assert flm.knobs == {"gamma": 0.25} and flm.steps == 4
    assert isinstance(_sampler_of(point("uniform", "UniformTime")).time, UniformTime)
    with pytest.raises(ConfigError, match="time grid 'MyTime'; this benchmark rebuilds UniformTime"):
        _sampler_of(point("mine", "MyTime"))
    with pytest.raises(ConfigError, match="used ArgmaxAccuracyTime but has no .hydra/config.yaml"):
        _sampler_of(point("bare", "ArgmaxAccuracyTime"))


def test_the_sampling_share_pairs_each_round_with_that_rounds_peak(monkeypatch):
    """A host that halves its speed in round 2 halves the peak GEMM there too: each round's ratio, and so
    the share, is unchanged, where a peak timed once before the run would report a lower share."""
    from textflow.bench import sampling

    clock = iter([1.5, 1.0, 1.2, 2.0, 3.0, 2.5])  # three GEMM calls a round; round 2 at half speed
    probe = sampling.PeakProbe(lambda: None, flops=10.0)
    monkeypatch.setattr(sampling, "seconds", lambda fn: next(clock))
    probe(), probe()
    assert probe.rates == [10.0, 5.0]  # the best of each round's three calls
    den = type("Den", (), {})()
    den.readout, den.readout_head, den.backbone, den.autoencoder = (lambda x: x), None, torch.nn.Module(), None
    monkeypatch.setattr(sampling, "backbone_forward_flops", lambda backbone, batch, seq_len: 5.0)
    monkeypatch.setattr(sampling, "readout_forward_flops", lambda ae, tokens: 0.0)
    once = lambda: type("Out", (), {"nfe": 1})()  # noqa: E731
    timing = {"median_s": 1.5, "min_s": 1.0, "max_s": 2.0, "repeats": 2, "times_s": [1.0, 2.0]}
    row = sampling._row(den, once, timing=timing, spec="ode", k=1, dev=torch.device("cpu"), batch_size=1,
                        seq_len=1, compile=False, bf16=False, peaks={"aten": probe.rates})
    assert row["fraction_of_peak"] == pytest.approx(0.5)  # 5 FLOP/s of 10, then 2.5 of 5
    assert row["peak_gflops"] == pytest.approx(7.5e-9) and row["peak_kernel"] == "aten"
    assert row["times_s"] == [1.0, 2.0] and "times_s" in timing  # the caller's timing is left whole
