"""Sweep aggregation on a fake multirun folder."""

from __future__ import annotations

import json

from textflow.sampling.report import build_report


def fake_run(folder, name, steps, entropy, **knobs):
    folder.mkdir(parents=True)
    metrics = {"sampler": {"name": name, "steps": steps, "time": "UniformTime", **knobs}, "nfe": steps,
               "tokens_per_s": 1000.0 / steps, "unigram_entropy": entropy, "distinct_1": 0.5, "distinct_2": 0.8,
               "repetition_4": 0.01, "num_samples": 4, "label": f"{name}_K{steps}",
               "reference/heldout": {"unigram_entropy": 4.0, "distinct_1": 0.6, "distinct_2": 0.9,
                                     "repetition_4": 0.0, "num_samples": 4}}
    (folder / "metrics.json").write_text(json.dumps(metrics))


def test_report_aggregates_every_run_with_reference_row_and_plots(tmp_path):
    fake_run(tmp_path / "0_sampler=ode,sampler.steps=4", "ode", 4, 3.0)
    fake_run(tmp_path / "1_sampler=ode,sampler.steps=32", "ode", 32, 3.5)
    fake_run(tmp_path / "2_sampler=sde,sampler.steps=4", "sde", 4, 3.8, gamma=1.5)
    fake_run(tmp_path / "3_sampler=sde,sampler.steps=32", "sde", 32, 3.9, gamma=1.5)
    result = build_report(tmp_path)
    assert [(r["sampler"], r["steps"]) for r in result["rows"]] == [("ode", 4), ("ode", 32), ("sde", 4), ("sde", 32)]
    md = result["markdown"].read_text()
    assert md.count("\n") == 2 + 4 + 1  # header, rule, four runs, held-out reference
    assert "heldout text" in md and "| sde | 32 | 1.5 | UniformTime | 32 |" in md
    csv_lines = result["csv"].read_text().splitlines()
    assert csv_lines[0].startswith("sampler,steps,gamma,time,nfe,tokens_per_s,unigram_entropy")
    assert len(csv_lines) == 6
    names = {p.name for p in result["figures"]}
    assert "metric_vs_K_unigram_entropy.png" in names and "metric_vs_K_tokens_per_s.png" in names


def test_failed_sweep_points_are_listed_with_their_reason(tmp_path):
    fake_run(tmp_path / "0", "ode", 4, 3.0)
    (tmp_path / "1" / ".hydra").mkdir(parents=True)
    (tmp_path / "1" / ".hydra" / "config.yaml").write_text("sampler:\n  name: student\n  steps: 32\n")
    (tmp_path / "1" / "error.json").write_text(json.dumps({"error": "no student was distilled for sampler.steps=32"}))
    result = build_report(tmp_path)
    failed = [r for r in result["rows"] if r.get("error")]
    assert failed == [{"run": "1", "error": "no student was distilled for sampler.steps=32", "sampler": "student",
                       "steps": 32}]
    assert "no student was distilled" in result["markdown"].read_text()


def test_repeated_seeds_get_mean_and_std(tmp_path):
    for i, (seed, entropy) in enumerate([(0, 3.0), (1, 3.2), (2, 3.4)]):
        fake_run(tmp_path / f"{i}", "ode", 4, entropy)
        data = json.loads((tmp_path / f"{i}" / "metrics.json").read_text())
        data["seed"] = seed
        (tmp_path / f"{i}" / "metrics.json").write_text(json.dumps(data))
    md = build_report(tmp_path)["markdown"].read_text()
    assert "Mean ± std over seeds" in md and "| 3.2 ± 0.2 |" in md and "| 3 |" in md


def test_report_figures_reach_tensorboard(tmp_path):
    from lightning.pytorch.loggers import TensorBoardLogger

    fake_run(tmp_path / "0", "ode", 4, 3.0)
    fake_run(tmp_path / "1", "ode", 8, 3.1)
    logger = TensorBoardLogger(save_dir=str(tmp_path), name="tb", version="")
    build_report(tmp_path, loggers=[logger])
    logger.save()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    assert "report/metric_vs_K_unigram_entropy" in acc.Tags()["images"]


def test_gamma_sweeps_get_their_own_plots(tmp_path):
    for i, gamma in enumerate([0.0, 0.5, 1.5]):
        fake_run(tmp_path / f"{i}", "sde", 4, 3.0 + gamma, gamma=gamma)
    names = {p.name for p in build_report(tmp_path)["figures"]}
    assert "metric_vs_gamma_unigram_entropy.png" in names
    assert "metric_vs_K_unigram_entropy.png" not in names  # a single K: nothing to draw against K


def test_runs_that_report_injected_noise_get_a_quality_against_noise_plot(tmp_path):
    for i, (name, noise, knobs) in enumerate([("ode", None, {}), ("sde", 1.125, {"gamma": 1.5}),
                                              ("adaptive", 0.4, {"gamma": 1.5, "scale": 0.1})]):
        fake_run(tmp_path / f"{i}_{name}", name, 4, 3.0 + i / 10, **knobs)
        if noise is not None:
            path = tmp_path / f"{i}_{name}" / "metrics.json"
            metrics = json.loads(path.read_text())
            path.write_text(json.dumps({**metrics, "injected_noise": noise}))
    result = build_report(tmp_path)
    names = {p.name for p in result["figures"]}
    assert "unigram_entropy_vs_injected_noise.png" in names
    assert "injected_noise" in result["markdown"].read_text()
    # without any noisy run there is nothing to compare: no such plot
    plain = tmp_path / "plain"
    fake_run(plain / "0_ode", "ode", 4, 3.0)
    fake_run(plain / "1_ode", "ode", 8, 3.1)
    assert not any("injected_noise" in p.name for p in build_report(plain)["figures"])


def test_judged_runs_get_the_perplexity_entropy_plane_with_reference_stars(tmp_path):
    for i, (name, ppl, entropy) in enumerate([("ode", 4000.0, 3.7), ("sde", 600.0, 2.4)]):
        fake_run(tmp_path / f"{i}_{name}", name, 4, entropy, **({"gamma": 1.5} if name == "sde" else {}))
        path = tmp_path / f"{i}_{name}" / "metrics.json"
        metrics = json.loads(path.read_text())
        metrics["gen_ppl"] = ppl
        metrics["reference/heldout"]["gen_ppl"] = 120.0
        path.write_text(json.dumps(metrics))
    assert "gen_ppl_vs_unigram_entropy.png" in {p.name for p in build_report(tmp_path)["figures"]}
    unjudged = tmp_path / "unjudged"  # evaluation=diversity: no gen-PPL, no plane
    fake_run(unjudged / "0_ode", "ode", 4, 3.0)
    fake_run(unjudged / "1_ode", "ode", 8, 3.1)
    assert "gen_ppl_vs_unigram_entropy.png" not in {p.name for p in build_report(unjudged)["figures"]}
