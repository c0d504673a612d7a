"""Everything a sampling run samples with, built from its checkpoint: the denoiser with the weights the
sampler asks for (the trained flow, or a distilled student: ``Sampler.denoiser``), on the chosen device
and precision, with the readout's feed set (``readout_feed=``, the commit ablation) and the checked
sequence length; with ``ar_twin=``, the AR twin's samples for its reference row
(:mod:`textflow.sampling.ar_twin`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from omegaconf import DictConfig

from textflow.checkpoint import LoadedRun, load_run
from textflow.cli import pick_device
from textflow.readouts.references import ReferenceSamples
from textflow.sampling.ar_twin import twin_references
from textflow.sampling.checks import check_seq_len
from textflow.sampling.prompts import build_prompts


@dataclass
class SamplingRun:
    """One sampling run's inputs, as its readout kind's sample report reads them."""

    cfg: DictConfig  # the composed sample.py config
    sampler: Any  # textflow.samplers.Sampler
    loaded: LoadedRun
    denoiser: Any  # textflow.denoiser.FlowDenoiser, weights as the sampler asked
    device: torch.device
    seq_len: int
    prompts: Any = None  # textflow.sampling.prompts.Prompts of a conditional run, else None
    # reference models' samples by row name (reference/<name>): {"ar_twin": ...} with ar_twin=CKPT
    extra_references: dict[str, ReferenceSamples] = field(default_factory=dict)

    @property
    def readout_kind(self):
        return self.denoiser.autoencoder.readout_kind


def prepare(cfg: DictConfig, sampler) -> SamplingRun:
    """Load ``cfg.ckpt_path`` and build the run's denoiser (bad values stop here with one line)."""
    loaded = load_run(cfg.ckpt_path)
    device = pick_device(cfg.device)
    loaded.module.to(device)
    denoiser = sampler.denoiser(loaded, use_ema=cfg.use_ema)
    if str(cfg.precision) == "bf16" and device.type == "cuda":
        denoiser.autocast_dtype = torch.bfloat16
    if cfg.compile:
        denoiser.backbone.compile()
    if cfg.readout_feed is not None:
        denoiser.autoencoder.readout_kind.set_feed(denoiser.autoencoder, cfg.readout_feed)
    seq_len = check_seq_len(cfg.seq_len, loaded.info["seq_len"])
    prompts = build_prompts(cfg, loaded, seq_len=seq_len)
    extra = twin_references(cfg, loaded, seq_len=seq_len, device=device)  # a bad ar_twin= stops here
    return SamplingRun(cfg=cfg, sampler=sampler, loaded=loaded, denoiser=denoiser, device=device, seq_len=seq_len,
                       prompts=prompts, extra_references=extra)
