"""Dashboards that show a sampler study (docs/dashboards.md).

A real two-point ``sample.py -m`` sweep with ``logger=many`` (wandb offline + TensorBoard + CSV) on the
CLI-trained checkpoint: each point is its own wandb run, named by its sampler label and grouped by the sweep
folder, holding the sampler's settings as config, the metrics of metrics.json as summary, the sample texts
as a table and the trajectory figure as an image; each point's TensorBoard log holds the same as HParams,
scalars, text and images. The sweep report's run holds the report table and its figures.

Offline wandb (wandb-core) writes config and summary only into the run's ``run-<id>.wandb`` file (no
``config.yaml`` or ``wandb-summary.json`` before a sync), so :func:`read_offline_run` reads that file:
LevelDB-log framing around wandb's own protobuf ``Record`` messages (``wandb.proto.wandb_internal_pb2``).
"""

from __future__ import annotations

import json
import shutil
import struct
import time
from pathlib import Path

import pytest
from conftest import compose_config
from test_cli import ckpt, run_cli  # noqa: F401 - the CLI-trained checkpoint fixture

BLOCK, HEADER = 32768, 7  # the LevelDB log layout of a .wandb file: 32 KiB blocks, 7-byte chunk headers
FULL, LAST = 1, 4


def wandb_records(path: Path):
    """The protobuf records of an offline run's ``.wandb`` file, in order."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a wandb run file"
    pos, pending = HEADER, b""
    while pos + HEADER <= len(data):
        room = BLOCK - pos % BLOCK
        if room < HEADER:  # a block's tail too short for a header is padding
            pos += room
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        if length == 0 and kind == 0:
            pos += room
            continue
        if pos + HEADER + length > len(data):  # a chunk still being written
            return
        pending += data[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record
            pending = b""


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)


def finished_records(path: Path, timeout: float = 30.0) -> list:
    """The records of a finished run: wandb-core writes the file asynchronously, so a run finished in this
    process may still be on its way to disk; a complete file ends with the run's exit record."""
    deadline = time.monotonic() + timeout
    while True:
        records = list(wandb_records(path)) if path.stat().st_size > HEADER else []
        if records and records[-1].WhichOneof("record_type") == "exit":
            return records
        assert time.monotonic() < deadline, f"{path} has no exit record after {timeout} s"
        time.sleep(0.2)


def read_offline_run(run_dir: Path) -> dict:
    """``name``, ``group``, ``job_type``, ``config`` and ``summary`` (the summary updates merged) of an
    offline wandb run folder, and its ``files`` folder (media)."""
    (path,) = run_dir.glob("run-*.wandb")
    run = {"config": {}, "summary": {}, "files": run_dir / "files"}
    for record in finished_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.update(name=record.run.display_name, group=record.run.run_group, job_type=record.run.job_type)
        elif kind == "config":
            run["config"].update({_key(i): json.loads(i.value_json) for i in record.config.update})
        elif kind == "summary":
            run["summary"].update({_key(i): json.loads(i.value_json) for i in record.summary.update})
    return run


def tensorboard_log(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"tensors": 0, "images": 0, "scalars": 0})
    acc.Reload()
    return acc


def tensorboard_hparams(acc) -> dict:
    """The hyperparameters a TensorBoard log's HParams record holds (the HParams tab's columns)."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    raw = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(raw).session_start_info.hparams
    return {k: getattr(v, v.WhichOneof("kind")) for k, v in hparams.items()}


def tensorboard_text(acc, tag: str) -> str:
    return b"".join(acc.Tensors(tag)[0].tensor_proto.string_val).decode()


@pytest.fixture(scope="module")
def sweep(ckpt, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("study")
    proc = run_cli("sample.py", "-m", f"ckpt_path={ckpt}", "sampler=sde", "sampler.gamma=0.5",
                   "sampler.steps=2,4", "num_samples=2", "evaluation=diversity", "logger=many",
                   f"hydra.sweep.dir={out}",
                   env_extra={"OMP_NUM_THREADS": "1", "WANDB_SILENT": "true"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    points = sorted(p.parent for p in out.glob("*/metrics.json"))
    assert len(points) == 2
    return out, points


def test_each_sweep_point_is_its_own_wandb_run_with_config_summary_texts_and_figures(sweep):
    root, points = sweep
    names = set()
    for point in points:
        runs = list((point / "wandb").glob("offline-run-*"))
        assert len(runs) == 1, runs  # the point's run was finished: the next point did not log into it
        run = read_offline_run(runs[0])
        metrics = json.loads((point / "metrics.json").read_text())
        names.add(run["name"])
        assert run["name"] == metrics["label"] and run["group"] == root.name and run["job_type"] == "sample"
        # config: the sampler block of metrics.json (the sweep report's columns), checkpoint, seed, samples
        assert run["config"]["sampler"] == metrics["sampler"] and run["config"]["sampler"]["gamma"] == 0.5
        assert run["config"]["ckpt_path"] == metrics["ckpt_path"] and run["config"]["seed"] == 0
        assert run["config"]["num_samples"] == 2
        # summary: the run's numbers, the reference rows' beside them, intervals as _lo/_hi
        summary = run["summary"]
        for key in ("unigram_entropy", "distinct_2", "nfe", "tokens_per_s", "diag/cci"):
            assert summary[f"sample/{key}"] == pytest.approx(metrics[key]), key
        heldout = metrics["reference/heldout"]
        reference = summary["sample/reference/heldout/unigram_entropy"]
        assert reference == pytest.approx(heldout["unigram_entropy"])
        assert summary["sample/unigram_entropy_ci95_lo"] == pytest.approx(metrics["unigram_entropy_ci95"][0])
        assert "sample/sampler/steps" not in summary and "sample/seed" not in summary  # settings are config
        # the text table: the samples of samples.jsonl
        table = json.loads((run["files"] / summary["sample/texts/path"]).read_text())
        texts = [json.loads(line)["text"] for line in (point / "samples.jsonl").read_text().splitlines()]
        assert table["columns"] == ["index", "text"] and [row[1] for row in table["data"]] == texts
        # the figure: the point's trajectory.png, byte for byte
        (image,) = summary["sample/trajectory/filenames"]
        assert (run["files"] / image).read_bytes() == (point / "trajectory.png").read_bytes()
    assert names == {"sde_gamma0.5_K2", "sde_gamma0.5_K4"}


def test_each_sweep_point_has_a_tensorboard_log_with_hparams_scalars_text_and_images(sweep):
    _, points = sweep
    steps = set()
    for point in points:
        metrics = json.loads((point / "metrics.json").read_text())
        acc = tensorboard_log(point / "tensorboard")
        hparams = tensorboard_hparams(acc)
        steps.add(hparams["sampler/steps"])
        assert hparams["label"] == metrics["label"] and hparams["sampler/gamma"] == 0.5
        assert hparams["ckpt_path"] == metrics["ckpt_path"]
        entropy = acc.Scalars("sample/unigram_entropy")[0].value
        assert entropy == pytest.approx(metrics["unigram_entropy"], rel=1e-6)
        heldout = acc.Scalars("sample/reference/heldout/unigram_entropy")[0].value
        assert heldout == pytest.approx(metrics["reference/heldout"]["unigram_entropy"], rel=1e-6)
        assert "sample/trajectory" in acc.Tags()["images"]
        image = acc.Images("sample/trajectory")[0]
        assert image.encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n" and image.width > 100
        first = json.loads((point / "samples.jsonl").read_text().splitlines()[0])["text"]
        shown = first.replace("\n", " ").replace("|", "\\|")  # as log_text_table writes a markdown cell
        assert shown in tensorboard_text(acc, "sample/texts/text_summary")
    assert steps == {2, 4}


def test_the_sweep_report_run_holds_the_report_table_and_figures(sweep, tmp_path):
    from textflow.dashboards.sweep import publish_sweep_report
    from textflow.sampling.report import build_report

    root, _ = sweep
    # a copy without the sweep's own logs, named like the sweep (the group is the folder's name)
    study = shutil.copytree(root, tmp_path / root.name,
                            ignore=shutil.ignore_patterns("wandb", "tensorboard", "csv"))
    result = build_report(study)
    logger_cfg = compose_config("sample", ["logger=many", "ckpt_path=unused"]).logger
    publish_sweep_report(logger_cfg, sweep_dir=study, report_csv=result["csv"], figures=result["figures"])

    (run_dir,) = (study / "wandb").glob("offline-run-*")
    run = read_offline_run(run_dir)
    assert (run["name"], run["group"], run["job_type"]) == ("sweep_report", study.name, "report")
    assert run["summary"]["report/runs"] == 2 and run["config"]["sweep_dir"] == str(study)
    table = json.loads((run["files"] / run["summary"]["report/table/path"]).read_text())
    rows = {row[table["columns"].index("sampler")]: row for row in table["data"]}
    assert {"sde", "heldout text", "shuffled text"} <= set(rows)
    by_k = {row[table["columns"].index("steps")]: row for row in table["data"] if row[0] == "sde"}
    entropy = table["columns"].index("unigram_entropy")
    for k, point in ((2, "0_"), (4, "1_")):
        (metrics_path,) = study.glob(f"{point}*/metrics.json")
        measured = json.loads(metrics_path.read_text())["unigram_entropy"]
        assert by_k[k][entropy] == pytest.approx(measured, rel=1e-4)
    figure = study / "metric_vs_K_unigram_entropy.png"
    assert figure in result["figures"]
    (logged,) = run["summary"]["report/metric_vs_K_unigram_entropy/filenames"]
    assert (run["files"] / logged).read_bytes() == figure.read_bytes()

    acc = tensorboard_log(study / "tensorboard")
    assert "report/metric_vs_K_unigram_entropy" in acc.Tags()["images"]
    assert "| heldout text |" in tensorboard_text(acc, "report/table/text_summary")


def test_the_sweep_ends_with_its_report_run_in_the_points_group(sweep):
    """``sample.py -m`` itself leaves the report run (ReportCallback calls publish_sweep_report)."""
    root, _ = sweep
    (run_dir,) = (root / "wandb").glob("offline-run-*")
    run = read_offline_run(run_dir)
    assert (run["name"], run["group"], run["job_type"]) == ("sweep_report", root.name, "report")
    assert run["summary"]["report/runs"] == 2 and "report/table/path" in run["summary"]
    assert "report/metric_vs_K_unigram_entropy/filenames" in run["summary"]


def test_the_diagnostics_command_sends_its_report_to_the_dashboards(ckpt, tmp_path):  # noqa: F811
    """``python -m textflow.diagnostics CKPT --logger many``: one ``diagnostics`` run holding the settings, the
    scalars of diagnostics.json under ``diag/`` and every figure (DABI vs f, flip rate vs s(t)) as an image."""
    out = tmp_path / "diag"
    proc = run_cli("-m", "textflow.diagnostics", str(ckpt), "--out", str(out), "--blocks", "2", "--steps", "2", "4",
                   "--logger", "many", env_extra={"OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "diagnostics.json").read_text())
    (run_dir,) = (out / "wandb").glob("offline-run-*")
    run = read_offline_run(run_dir)
    assert (run["name"], run["job_type"]) == ("diagnostics", "diagnostics")
    assert run["config"]["ckpt"] == str(ckpt) and run["config"]["steps"] == [2, 4]
    assert run["summary"]["diag/clean_readout_acc"] == pytest.approx(result["clean_readout_acc"])
    assert run["summary"]["diag/tube/median_margin"] == pytest.approx(result["tube"]["median_margin"])
    assert run["summary"]["diag/flip/K4/observed_flip"] == pytest.approx(result["flip"][1]["observed_flip"])
    figures = sorted(p.stem for p in out.glob("*.png"))
    assert "dabi_vs_f" in figures and "flip_vs_s" in figures
    media = [p.name for p in (run["files"] / "media" / "images").rglob("*.png")]
    assert all(any(name.startswith(f"{stem}_") or stem in name for name in media) for stem in figures), media
    acc = tensorboard_log(next((out / "tensorboard").rglob("events.out.tfevents.*")).parent)
    assert {f"diag/{stem}" for stem in figures} <= set(acc.Tags()["images"])
