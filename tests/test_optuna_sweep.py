"""Sampler studies on Hydra's Optuna sweeper (docs/samplers.md, "Tuning samplers with Optuna"): the objective
sample.py returns, its knobs, the study-point checks, the report's study section, and a real three-trial
study on a CLI-trained checkpoint with a tiny local judge, stored in SQLite."""

from __future__ import annotations

import json
import math

import pytest

from conftest import FIXTURE_CORPUS, compose_config
from test_cli import assert_one_line_error, ckpt, run_cli  # noqa: F401 - the CLI-trained checkpoint fixture
from textflow.errors import ConfigError
from textflow.sampling.objective import FAILED, check_knobs, penalised_objective, scored_run
from textflow.sampling.report import build_report


def metrics(gen_ppl=100.0, entropy=3.5, heldout=3.7) -> dict:
    return {"gen_ppl": gen_ppl, "unigram_entropy": entropy, "reference/heldout": {"unigram_entropy": heldout}}


def by_hand(m: dict, tolerance: float, penalty: float) -> float:
    gap = abs(m["unigram_entropy"] - m["reference/heldout"]["unigram_entropy"])
    return math.log(m["gen_ppl"]) + penalty * max(0.0, gap - tolerance)


# --- the objective -----------------------------------------------------------------------------------


@pytest.mark.parametrize("entropy", [3.7, 3.45, 3.95, 3.4000001])
def test_inside_the_tolerance_band_the_objective_is_ln_gen_ppl(entropy):
    value = penalised_objective(metrics(entropy=entropy), entropy_tolerance=0.3, penalty=10.0)
    assert value == math.log(100.0)


def test_outside_the_band_each_nat_costs_the_penalty_on_either_side():
    inside = penalised_objective(metrics(entropy=3.5), entropy_tolerance=0.3, penalty=10.0)
    below = penalised_objective(metrics(entropy=3.2), entropy_tolerance=0.3, penalty=10.0)  # 0.2 nat beyond
    above = penalised_objective(metrics(entropy=4.2), entropy_tolerance=0.3, penalty=10.0)
    further = penalised_objective(metrics(entropy=2.9), entropy_tolerance=0.3, penalty=10.0)
    assert below == pytest.approx(math.log(100.0) + 10.0 * 0.2) and above == pytest.approx(below)
    assert inside < below < further and further == pytest.approx(math.log(100.0) + 10.0 * 0.5)
    # a lower gen-PPL bought by collapse loses to a worse one at real text's entropy
    collapsed = penalised_objective(metrics(gen_ppl=20.0, entropy=2.5), entropy_tolerance=0.3, penalty=10.0)
    assert collapsed > inside
    assert penalised_objective(metrics(entropy=2.5), entropy_tolerance=0.3, penalty=0.0) == math.log(100.0)


@pytest.mark.parametrize("knobs,needle", [
    ({"entropy_tolerance": -0.1, "penalty": 10.0}, "objective.entropy_tolerance=-0.1"),
    ({"entropy_tolerance": 0.3, "penalty": -1}, "objective.penalty=-1"),
    ({"entropy_tolerance": float("nan"), "penalty": 1.0}, "objective.entropy_tolerance=nan"),
    ({"entropy_tolerance": 0.3, "penalty": True}, "objective.penalty=True"),
    ({"entropy_tolerance": 0.3, "penalty": "high"}, "objective.penalty='high'"),
])
def test_bad_knobs_are_refused_in_one_line_naming_the_value(knobs, needle):
    with pytest.raises(ConfigError) as err:
        check_knobs(**knobs)
    assert needle in str(err.value) and ">= 0" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="objective"):
        penalised_objective(metrics(), **knobs)


@pytest.mark.parametrize("missing", ["gen_ppl", "unigram_entropy", "reference/heldout"])
def test_a_run_without_the_judge_or_held_out_text_cannot_be_scored(missing):
    m = metrics()
    del m[missing]
    with pytest.raises(ConfigError, match=r"evaluation=judge.*reference=true"):
        penalised_objective(m, entropy_tolerance=0.3, penalty=10.0)


def test_a_nan_measurement_is_the_worst_value():
    assert penalised_objective(metrics(gen_ppl=float("nan")), entropy_tolerance=0.3, penalty=1.0) == FAILED
    assert penalised_objective(metrics(entropy=float("nan")), entropy_tolerance=0.3, penalty=1.0) == FAILED


def test_a_study_point_that_cannot_be_scored_is_refused_before_sampling(tmp_path):
    def never(cfg):
        raise AssertionError("sampled")

    base = ["ckpt_path=x.ckpt", f"dirs.output_dir={tmp_path}"]
    with pytest.raises(ConfigError, match="evaluation=diversity"):
        scored_run(compose_config("sample", [*base, "evaluation=diversity"]), run=never, study=True)
    with pytest.raises(ConfigError, match="reference=true"):
        scored_run(compose_config("sample", [*base, "reference=false"]), run=never, study=True)
    with pytest.raises(ConfigError, match="objective.penalty=-2"):
        scored_run(compose_config("sample", [*base, "objective.penalty=-2"]), run=never, study=False)
    # outside a study an unjudged run is fine: it has no objective
    unjudged = {"unigram_entropy": 3.0, "reference/heldout": {"unigram_entropy": 3.2}}
    cfg = compose_config("sample", [*base, "evaluation=diversity"])
    assert scored_run(cfg, run=lambda c: (unjudged, {}), study=False) is None
    judged = compose_config("sample", [*base, "objective.entropy_tolerance=0.1", "objective.penalty=4"])
    assert scored_run(judged, run=lambda c: (metrics(), {}), study=False) == pytest.approx(
        by_hand(metrics(), 0.1, 4.0))


def test_bad_objective_knob_on_the_command_line_is_one_line(tmp_path):
    proc = run_cli("sample.py", "ckpt_path=/no/such/file.ckpt", "objective.entropy_tolerance=-0.5",
                   f"hydra.run.dir={tmp_path}")
    assert_one_line_error(proc, "objective.entropy_tolerance=-0.5", ">= 0")


# --- the report's study section -----------------------------------------------------------------------


def fake_point(folder, gamma, m: dict | None, *, error: str | None = None):
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text(f"sampler:\n  name: sde\n  steps: 4\n  gamma: {gamma}\n"
                                                   "objective:\n  entropy_tolerance: 0.3\n  penalty: 10.0\n")
    if m is not None:
        (folder / "metrics.json").write_text(json.dumps(
            {"sampler": {"name": "sde", "steps": 4, "gamma": gamma}, "nfe": 4, **m}))
    if error is not None:
        (folder / "error.json").write_text(json.dumps({"error": error}))


def test_the_report_of_a_study_names_the_best_point_and_draws_the_trade_off(tmp_path):
    fake_point(tmp_path / "0_sampler.gamma=0.5", 0.5, metrics(gen_ppl=50.0, entropy=2.9))  # collapsed
    fake_point(tmp_path / "1_sampler.gamma=1.5", 1.5, metrics(gen_ppl=80.0, entropy=3.6))  # the best
    fake_point(tmp_path / "2_sampler.gamma=2.5", 2.5, metrics(gen_ppl=120.0, entropy=3.8))
    fake_point(tmp_path / "3_sampler.gamma=3.0", 3.0, None, error="sampler blew up")
    (tmp_path / "optimization_results.yaml").write_text(
        "name: optuna\nbest_params:\n  sampler.gamma: 1.5\nbest_value: " + repr(math.log(80.0)) + "\n")
    result = build_report(tmp_path)
    study = result["study"]
    assert study["best"]["run"] == "1_sampler.gamma=1.5" and study["best"]["objective"] == math.log(80.0)
    assert [t["run"][0] for t in study["trials"]] == ["1", "2", "0", "3"]  # collapse loses; failed last
    assert study["trials"][-1]["objective"] == FAILED and study["trials"][-1]["error"] == "sampler blew up"
    collapsed = by_hand(metrics(gen_ppl=50.0, entropy=2.9), 0.3, 10.0)
    assert study["trials"][2]["objective"] == pytest.approx(collapsed)
    md = result["markdown"].read_text()
    assert "## Sampler study" in md and "Best point: `1_sampler.gamma=1.5`" in md
    assert "- gen_ppl: 80" in md and "- unigram_entropy: 3.6 (held-out 3.7, band [3.4, 4])" in md
    assert "best_params {'sampler.gamma': 1.5}" in md
    figure = tmp_path / "study_tradeoff.png"
    assert figure.stat().st_size > 0 and figure in result["figures"]


def test_a_plain_sweep_has_no_study_section(tmp_path):
    fake_point(tmp_path / "0", 0.5, metrics())
    fake_point(tmp_path / "1", 1.5, metrics())
    result = build_report(tmp_path)
    assert result["study"] is None and "Sampler study" not in result["markdown"].read_text()
    assert not (tmp_path / "study_tradeoff.png").exists()


# --- a real study ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_judge(tmp_path_factory):
    """A random one-layer GPT-2 with a BPE trained on the fixture corpus, saved as a local judge folder."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    from textflow.data import TrainedBPE

    folder = tmp_path_factory.mktemp("tiny-judge")
    texts = [p.read_text() for p in sorted((FIXTURE_CORPUS / "train").glob("*.txt"))]
    tok = TrainedBPE(vocab_size=300).build(texts=texts, cache_dir=str(folder / "bpe"), corpus_key="judge")
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok.tokenizer, bos_token="<|endoftext|>",
                                     eos_token="<|endoftext|>")
    hf_tok.save_pretrained(folder / "model")
    torch.manual_seed(0)
    eos = hf_tok.eos_token_id
    GPT2LMHeadModel(GPT2Config(vocab_size=tok.vocab_size, n_positions=128, n_embd=16, n_layer=1, n_head=2,
                               bos_token_id=eos, eos_token_id=eos)).save_pretrained(folder / "model")
    return folder / "model"


def test_a_three_trial_study_is_stored_in_sqlite_and_reported(ckpt, tiny_judge, tmp_path):  # noqa: F811
    import optuna
    from omegaconf import OmegaConf

    tolerance, penalty = 0.05, 7.0  # a narrow band: the penalty term takes part in the check below
    proc = run_cli("sample.py", "-m", "hydra/sweeper=sampler_study", "hydra.sweeper.n_trials=3",
                   f"ckpt_path={ckpt}", "sampler=sde", "sampler.steps=2", "num_samples=2", "print_samples=0",
                   f"evaluation.judge.name_or_path={tiny_judge}", f"objective.entropy_tolerance={tolerance}",
                   f"objective.penalty={penalty}", f"hydra.sweep.dir={tmp_path}",
                   "hydra.job.config.override_dirname.exclude_keys=[ckpt_path,evaluation.judge.name_or_path]",
                   env_extra={"OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "study.db").is_file()
    study = optuna.load_study(study_name="sde_K2", storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert len(study.trials) == 3 and all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    penalised = 0
    for trial in study.trials:
        (folder,) = tmp_path.glob(f"{trial.number}_*")
        m = json.loads((folder / "metrics.json").read_text())
        assert m["sampler"]["gamma"] == trial.params["sampler.gamma"] and 0.0 <= m["sampler"]["gamma"] <= 3.0
        assert math.isfinite(trial.value)
        assert trial.value == pytest.approx(by_hand(m, tolerance, penalty), rel=1e-12)
        penalised += trial.value > math.log(m["gen_ppl"]) + 1e-9
    assert penalised >= 1
    best = min(study.trials, key=lambda t: t.value)
    recorded = OmegaConf.load(tmp_path / "optimization_results.yaml")
    assert recorded.best_value == best.value
    assert recorded.best_params["sampler.gamma"] == best.params["sampler.gamma"]
    report = (tmp_path / "report.md").read_text()
    (best_folder,) = tmp_path.glob(f"{best.number}_*")
    assert "## Sampler study" in report and f"Best point: `{best_folder.name}`" in report
    assert (tmp_path / "study_tradeoff.png").stat().st_size > 0
