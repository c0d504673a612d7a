"""Everything a sampling run samples with, built from its checkpoint: the denoiser with the weights the
sampler asks for (the trained flow, or a distilled student: ``Sampler.denoiser``), on the chosen device
and precision, with the readout's feed set (``readout_feed=``, the commit ablation) and the checked
sequence length."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig

from textflow.checkpoint import LoadedRun, load_run
from textflow.cli import pick_device
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
    return SamplingRun(cfg=cfg, sampler=sampler, loaded=loaded, denoiser=denoiser, device=device, seq_len=seq_len,
                       prompts=prompts)
