"""Each benchmark runs on tiny settings with one repetition (timings are never asserted)."""

from __future__ import annotations

import json

import pytest
import torch

import train as train_entry
from conftest import compose_config, tiny_train_overrides
from textflow.bench.__main__ import main as bench_main


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory, cache_dir):
    out = tmp_path_factory.mktemp("bench-train")
    _, objs = train_entry.run(compose_config("train", tiny_train_overrides(out, cache_dir) + ["trainer.max_steps=2"]))
    return objs["checkpoint"]


def test_sampling_benchmark_runs(tiny_ckpt, tmp_path):
    bench_main(["sampling", "--ckpt", str(tiny_ckpt), "--samplers", "ode,sde", "--steps", "1,2", "--batch-size", "2",
                "--repeats", "1", "--out", str(tmp_path)])
    result = json.loads(next(tmp_path.glob("sampling-*.json")).read_text())
    assert [(r["sampler"], r["K"], r["nfe"]) for r in result["rows"]] == [("ode", 1, 1), ("ode", 2, 2), ("sde", 1, 1),
                                                                          ("sde", 2, 2)]
    assert all(r["tokens_per_s"] > 0 for r in result["rows"]) and "machine" in result


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
    assert row["tokens_per_s"] > 0 and 0 < row["mfu"] and row["peak_gflops"] > 0


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
