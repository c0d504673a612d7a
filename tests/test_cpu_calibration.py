"""The ``mkl`` inference linears and the per-machine choice between them and oneDNN's
(textflow/kernels/linear.py, textflow/kernels/calibration.py)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from textflow.kernels import calibration
from textflow.kernels import linear as kl


def big(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("gelu", [False, True])
def test_mkl_backend_is_pytorchs_gemm_with_the_exp2_gelu(gelu, monkeypatch):
    calls = []
    monkeypatch.setattr(kl, "_fused_op", lambda: calls.append(1))  # oneDNN is never reached
    x, w, b = big(8, 64, 128), big(256, 128, seed=1), big(256, seed=2)
    want = F.linear(x, w, b)
    with torch.no_grad(), kl.use_cpu_linear("mkl"):
        got = kl.linear(x, w, b, gelu=gelu)
    if gelu:
        torch.testing.assert_close(got, F.gelu(want, approximate="tanh"), rtol=1e-5, atol=1e-6)
    else:
        assert torch.equal(got, want)
    assert calls == []


def test_mkl_backend_leaves_training_to_pytorch_bit_for_bit():
    layer = kl.Linear(128, 256)
    x = big(8, 64, 128)
    mlp = kl.GeluMLP(128, 512)
    with kl.use_cpu_linear("mkl"):
        assert torch.equal(layer(x), F.linear(x, layer.weight, layer.bias))
        up, act, down = mlp
        assert torch.equal(mlp(x), down(act(up(x))))  # ATen's GELU, whose backward training needs
        mlp(x).sum().backward()
    assert up.weight.grad is not None


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTFLOW_CACHE", str(tmp_path))
    return tmp_path / calibration.CACHE_FILE


def times(onednn: float, mkl: float, fused: float | None = None) -> dict[str, float]:
    """Median times of the three paths (the fused GELU as slow as the separate one unless given)."""
    return {"onednn/separate": onednn, "onednn/fused": onednn if fused is None else fused, "mkl": mkl}


def fake_measure(monkeypatch, onednn: float, mkl: float, fused: float | None = None) -> list:
    calls = []

    def measure():
        calls.append(1)
        return times(onednn, mkl, fused)

    monkeypatch.setattr(calibration, "measure", measure)
    return calls


@pytest.fixture
def avx2(monkeypatch):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")


def test_mkl_is_chosen_only_when_it_is_clearly_faster(avx2):
    assert calibration.choose(times(onednn=10.0, mkl=9.5))["backend"] == "mkl"
    assert calibration.choose(times(onednn=10.0, mkl=9.6))["backend"] == "onednn"  # within the margin: a tie
    assert calibration.choose(times(onednn=8.0, mkl=10.0))["backend"] == "onednn"


def test_a_gelu_placement_wins_only_when_clearly_faster_and_a_tie_keeps_the_cpus_default(monkeypatch):
    for capability, default in (("AVX512", "fused"), ("AVX512_BF16", "fused"), ("AVX2", "separate"),
                                ("DEFAULT", "separate")):
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda c=capability: c)
        assert calibration.default_placement() == default
        tie = calibration.choose(times(onednn=10.0, mkl=20.0, fused=9.8))
        assert tie == {"backend": "onednn", "gelu": default}
        assert calibration.choose(times(onednn=10.0, mkl=20.0, fused=9.5))["gelu"] == "fused"
        assert calibration.choose(times(onednn=9.5, mkl=20.0, fused=10.0))["gelu"] == "separate"


def test_mkl_is_weighed_against_onednn_with_the_chosen_placement(avx2):
    # the fused GELU brings oneDNN to 8 ms: mkl's 9 ms is no longer the faster
    fused_wins = calibration.choose(times(onednn=10.0, mkl=9.0, fused=8.0))
    assert fused_wins == {"backend": "onednn", "gelu": "fused"}
    assert calibration.choose(times(onednn=10.0, mkl=9.0)) == {"backend": "mkl", "gelu": "separate"}


def test_the_choice_is_measured_once_and_remembered_per_machine(cache, monkeypatch, avx2):
    cache.parent.mkdir(exist_ok=True)
    cache.write_text(json.dumps({"another CPU": {"backend": "onednn"}}))
    calls = fake_measure(monkeypatch, onednn=10.0, mkl=8.0)
    assert calibration.calibrated_cpu_backend() == "mkl"
    assert calibration.calibrated_gelu_placement() == "separate"
    stored = json.loads(cache.read_text())
    assert stored[calibration.machine_key()] == {"backend": "mkl", "gelu": "separate",
                                                  "median_ms": times(onednn=10.0, mkl=8.0)}
    assert stored["another CPU"] == {"backend": "onednn"}  # other machines' answers are kept
    fake_measure(monkeypatch, onednn=8.0, mkl=10.0, fused=4.0)
    assert calibration.calibrated_cpu_choice() == {"backend": "mkl", "gelu": "separate"}  # the same path
    assert calls == [1]


def test_an_answer_stored_before_the_placement_was_measured_keeps_its_path(cache, monkeypatch):
    monkeypatch.setattr(calibration, "machine_key", lambda: "this machine")
    cache.parent.mkdir(exist_ok=True)
    cache.write_text(json.dumps({"this machine": {"backend": "onednn", "median_ms": {}}}))
    calls = fake_measure(monkeypatch, onednn=10.0, mkl=5.0, fused=1.0)
    for capability, default in (("AVX512", "fused"), ("AVX2", "separate")):
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda c=capability: c)
        assert calibration.calibrated_cpu_choice() == {"backend": "onednn", "gelu": default}
    assert calls == []


def test_a_corrupt_or_unwritable_cache_is_measured_again(cache, monkeypatch, avx2):
    cache.parent.mkdir(exist_ok=True)
    cache.write_text("{not json")
    calls = fake_measure(monkeypatch, onednn=8.0, mkl=10.0)
    assert calibration.calibrated_cpu_backend() == "onednn"
    assert json.loads(cache.read_text())[calibration.machine_key()]["backend"] == "onednn"

    monkeypatch.setattr(calibration, "atomic_write_json", lambda *a: (_ for _ in ()).throw(PermissionError()))
    monkeypatch.setattr(calibration, "_unstored", {})
    cache.unlink()
    assert calibration.calibrated_cpu_backend() == "onednn" and calls == [1, 1]
    # what could not be stored is remembered by the process: the placement needs no second measurement
    assert calibration.calibrated_gelu_placement() == "separate" and calls == [1, 1]


def test_auto_is_the_default_and_reads_the_calibration(cache, monkeypatch, avx2):
    for key, env in (("backend", "TEXTFLOW_CPU_LINEAR"), ("gelu", "TEXTFLOW_CPU_GELU")):
        monkeypatch.setitem(kl._state, key, None)
        monkeypatch.delenv(env)
    fake_measure(monkeypatch, onednn=10.0, mkl=5.0, fused=9.0)
    assert kl.cpu_linear_backend() == "mkl" and kl.cpu_gelu_placement() == "fused"
    named = (("backend", "TEXTFLOW_CPU_LINEAR", "onednn"), ("gelu", "TEXTFLOW_CPU_GELU", "separate"))
    for key, env, name in named:
        monkeypatch.setitem(kl._state, key, None)
        monkeypatch.setenv(env, name)
    calls = fake_measure(monkeypatch, onednn=10.0, mkl=5.0, fused=9.0)
    cache.unlink()
    # named settings need no measurement
    assert kl.cpu_linear_backend() == "onednn" and kl.cpu_gelu_placement() == "separate" and calls == []


def test_the_real_measurement_times_every_path(monkeypatch):
    monkeypatch.setitem(kl._state, "gelu", None)
    monkeypatch.setenv("TEXTFLOW_CPU_GELU", "auto")  # each path names its placement: none is calibrated
    median_ms = calibration.measure(rounds=2)
    assert set(median_ms) == set(calibration.PATHS) and all(v > 0 for v in median_ms.values())
    assert kl._state["gelu"] is None


def test_the_machine_key_names_the_cpu_torch_and_threads():
    key = calibration.machine_key()
    assert torch.__version__ in key and f"{torch.get_num_threads()} threads" in key
    assert torch.backends.cpu.get_cpu_capability() in key



def test_naming_a_backend_does_not_start_the_calibration(cache, monkeypatch, avx2):
    for key, env in (("backend", "TEXTFLOW_CPU_LINEAR"), ("gelu", "TEXTFLOW_CPU_GELU")):
        monkeypatch.setitem(kl._state, key, None)
        monkeypatch.setenv(env, "auto")
    calls = fake_measure(monkeypatch, onednn=10.0, mkl=5.0)
    with torch.no_grad(), kl.use_cpu_linear("onednn"), kl.use_cpu_gelu("fused"):
        assert kl.cpu_linear_backend() == "onednn" and kl.cpu_gelu_placement() == "fused"
        kl.linear(big(8, 64, 128), big(256, 128, seed=1), gelu=True)
    assert calls == [] and not cache.exists() and kl._state["backend"] is None and kl._state["gelu"] is None
    assert kl.cpu_linear_backend() == "mkl" and calls == [1]  # the default is measured when it is needed


def test_bench_calibrate_measures_again_beside_the_stored_choice_and_stores_only_when_asked(
        cache, monkeypatch, avx2):
    from textflow.bench import calibrate

    cache.parent.mkdir(exist_ok=True)
    cache.write_text(json.dumps({calibration.machine_key(): {"backend": "mkl", "gelu": "separate"}}))
    answers = iter([times(onednn=10.0, mkl=12.0, fused=9.0), times(onednn=10.0, mkl=8.0),
                    times(onednn=11.0, mkl=12.0, fused=9.0)])
    monkeypatch.setattr(calibration, "measure", lambda rounds: next(answers))
    rows = calibrate.run(rounds=3, repeats=3)
    assert [r["measurement"] for r in rows] == ["1", "2", "3", "median"]
    assert [(r["backend"], r["gelu"]) for r in rows[:3]] == [("onednn", "fused"), ("mkl", "separate"),
                                                               ("onednn", "fused")]
    # the medians (separate 10, fused 9, mkl 12 ms) choose oneDNN with the fused GELU; the stored one is shown
    assert rows[-1]["onednn/fused_ms"] == 9.0 and rows[-1]["mkl_ms"] == 12.0
    assert (rows[-1]["backend"], rows[-1]["gelu"]) == ("onednn", "fused")
    assert all(r["stored_backend"] == "mkl" and r["stored_gelu"] == "separate" for r in rows)
    assert calibration.stored_choice() == {"backend": "mkl", "gelu": "separate"}  # not stored unless asked

    monkeypatch.setattr(calibration, "measure", lambda rounds: times(onednn=10.0, mkl=12.0, fused=9.0))
    rows = calibrate.run(rounds=3, repeats=1, store=True)
    assert rows[-1]["stored_now"] and calibration.stored_choice() == {"backend": "onednn", "gelu": "fused"}


def test_bench_calibrate_runs_from_the_command_line_and_refuses_bad_counts(cache, tmp_path):
    from textflow.bench.__main__ import main as bench_main
    from textflow.bench import calibrate
    from textflow.errors import ConfigError

    bench_main(["calibrate", "--rounds", "1", "--repeats", "1", "--out", str(tmp_path)])
    rows = json.loads(next(tmp_path.glob("calibrate-*.json")).read_text())["rows"]
    assert [r["measurement"] for r in rows] == ["1", "median"] and not cache.exists()
    assert all(rows[-1][f"{name}_ms"] > 0 for name in calibration.PATHS)
    with pytest.raises(ConfigError, match=r"--rounds=0 is invalid"):
        calibrate.run(rounds=0)
