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


def fake_measure(monkeypatch, onednn: float, mkl: float) -> list:
    calls = []

    def measure():
        calls.append(1)
        return {"onednn": onednn, "mkl": mkl}

    monkeypatch.setattr(calibration, "measure", measure)
    return calls


def test_mkl_is_chosen_only_when_it_is_clearly_faster():
    assert calibration.choose({"onednn": 10.0, "mkl": 9.5}) == "mkl"
    assert calibration.choose({"onednn": 10.0, "mkl": 9.6}) == "onednn"  # within the margin: a tie
    assert calibration.choose({"onednn": 8.0, "mkl": 10.0}) == "onednn"


def test_the_choice_is_measured_once_and_remembered_per_machine(cache, monkeypatch):
    cache.parent.mkdir(exist_ok=True)
    cache.write_text(json.dumps({"another CPU": {"backend": "onednn"}}))
    calls = fake_measure(monkeypatch, onednn=10.0, mkl=8.0)
    assert calibration.calibrated_cpu_backend() == "mkl"
    stored = json.loads(cache.read_text())
    assert stored[calibration.machine_key()] == {"backend": "mkl", "median_ms": {"onednn": 10.0, "mkl": 8.0}}
    assert stored["another CPU"] == {"backend": "onednn"}  # other machines' answers are kept
    fake_measure(monkeypatch, onednn=8.0, mkl=10.0)
    assert calibration.calibrated_cpu_backend() == "mkl"  # the stored answer: the same path every run
    assert calls == [1]


def test_a_corrupt_or_unwritable_cache_is_measured_again(cache, monkeypatch):
    cache.parent.mkdir(exist_ok=True)
    cache.write_text("{not json")
    calls = fake_measure(monkeypatch, onednn=8.0, mkl=10.0)
    assert calibration.calibrated_cpu_backend() == "onednn"
    assert json.loads(cache.read_text())[calibration.machine_key()]["backend"] == "onednn"

    monkeypatch.setattr(calibration, "atomic_write_json", lambda *a: (_ for _ in ()).throw(PermissionError()))
    cache.unlink()
    assert calibration.calibrated_cpu_backend() == "onednn" and calls == [1, 1]


def test_auto_is_the_default_and_reads_the_calibration(cache, monkeypatch):
    monkeypatch.setitem(kl._state, "backend", None)
    monkeypatch.delenv("TEXTFLOW_CPU_LINEAR")
    fake_measure(monkeypatch, onednn=10.0, mkl=5.0)
    assert kl.cpu_linear_backend() == "mkl"
    monkeypatch.setitem(kl._state, "backend", None)
    monkeypatch.setenv("TEXTFLOW_CPU_LINEAR", "onednn")
    assert kl.cpu_linear_backend() == "onednn"  # a named backend needs no measurement


def test_the_real_measurement_times_both_paths():
    median_ms = calibration.measure(rounds=2)
    assert set(median_ms) == {"onednn", "mkl"} and all(v > 0 for v in median_ms.values())


def test_the_machine_key_names_the_cpu_torch_and_threads():
    key = calibration.machine_key()
    assert torch.__version__ in key and f"{torch.get_num_threads()} threads" in key
    assert torch.backends.cpu.get_cpu_capability() in key



def test_naming_a_backend_does_not_start_the_calibration(cache, monkeypatch):
    monkeypatch.setitem(kl._state, "backend", None)
    monkeypatch.setenv("TEXTFLOW_CPU_LINEAR", "auto")
    calls = fake_measure(monkeypatch, onednn=10.0, mkl=5.0)
    with torch.no_grad(), kl.use_cpu_linear("onednn"):
        assert kl.cpu_linear_backend() == "onednn"
        kl.linear(big(8, 64, 128), big(256, 128, seed=1))
    assert calls == [] and not cache.exists() and kl._state["backend"] is None
    assert kl.cpu_linear_backend() == "mkl" and calls == [1]  # the default is measured when it is needed
