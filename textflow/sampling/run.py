"""The sampling run behind ``sample.py`` (docs/samplers.md, docs/evaluation.md).

check the values -> hold the run folder -> load the checkpoint and build the sampler's denoiser
(:mod:`textflow.sampling.setup`) -> batch-invariant generation (:mod:`textflow.sampling.generate`) ->
the readout kind's sample report (text beside held-out real text, or images beside held-out images;
:mod:`textflow.readouts`) -> files written as one unit with one run id, loggers, printout
(:mod:`textflow.sampling.outputs`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig
from tqdm.auto import tqdm

from textflow.runs.lock import RunFolderLock, global_rank
from textflow.sampling.checks import check_counts, check_seq_len, check_steps_limit
from textflow.sampling.generate import generate
from textflow.sampling.outputs import publish
from textflow.sampling.setup import prepare

__all__ = ["check_counts", "check_seq_len", "check_steps_limit", "run", "sample_run"]


def run(cfg: DictConfig) -> tuple[dict, dict]:
    """One sampling run; returns (metrics, objects: the generation, the loaded run, texts or images)."""
    check_counts(cfg)
    sampler = instantiate(cfg.sampler)  # bad sampler knobs fail here, before loading anything
    check_steps_limit(sampler.steps, cfg.max_sampler_steps)
    with RunFolderLock(cfg.dirs.output_dir, rank=global_rank()):  # one live run per folder
        return sample_run(cfg, sampler)


def sample_run(cfg: DictConfig, sampler) -> tuple[dict, dict]:
    setup = prepare(cfg, sampler)
    kind = setup.readout_kind
    recorder = kind.trajectory_recorder(setup.denoiser.path) if cfg.diagnostics else None
    with tqdm(total=cfg.num_samples, desc=f"sampling {sampler.label}", unit="seq", file=sys.stderr) as bar:
        gen = generate(setup.denoiser, sampler, num_samples=cfg.num_samples, seq_len=setup.seq_len, seed=cfg.seed,
                       batch_size=cfg.batch_size, device=setup.device, progress=bar.update, callback=recorder,
                       prompts=setup.prompts)
    if setup.prompts is not None and cfg.get("continuation_baseline", True) and setup.prompts.prefix_lengths:
        # the unconditional baseline: the same seeds and sampler without the prompts (docs/conditioning.md)
        plain = sampler if sampler.cfg_scale == 1.0 else sampler.without_cfg()
        with tqdm(total=cfg.num_samples, desc="unconditional baseline", unit="seq", file=sys.stderr) as bar:
            gen.baseline = generate(setup.denoiser, plain, num_samples=cfg.num_samples, seq_len=setup.seq_len,
                                    seed=cfg.seed, batch_size=cfg.batch_size, device=setup.device, progress=bar.update)
    report = kind.report_samples(setup, gen, recorder)
    publish(report, out_dir=Path(cfg.dirs.output_dir), logger_cfg=cfg.get("logger"), label=sampler.label)
    return report.metrics, report.objects
