"""Log a few generated texts and their diversity metrics during training."""

from __future__ import annotations

import lightning as L
import torch

from textflow.callbacks.base import is_text_flow
from textflow.dashboards import log_metrics, log_text_table
from textflow.sampling.generate import generate
from textflow.metrics import text_metrics


class SampleTextLogger(L.Callback):
    """Every ``every_n_validations`` validation runs, sample ``num_samples`` texts from the EMA weights.

    Logged keys (``<label>`` is the sampler's label, e.g. ``ode_K4``):
    ``samples/<label>/unigram_entropy``, ``samples/<label>/distinct_1``,
    ``samples/<label>/distinct_2``, ``samples/<label>/repetition_4`` as scalars, and a text table
    ``samples/<label>`` (step, text) on loggers that take text (TensorBoard, wandb).

    Args:
        sampler: a :class:`textflow.samplers.Sampler` (built from a conf/sampler node).
        num_samples, seed: how many texts and the noise seed (fixed, so epochs are comparable).
        every_n_validations: run on every n-th validation run; 0 disables the callback.
    """

    def __init__(self, *, sampler, num_samples: int = 4, seed: int = 0, every_n_validations: int = 1):
        self.sampler, self.num_samples, self.seed = sampler, int(num_samples), int(seed)
        self.every_n_validations = int(every_n_validations)
        self._validations = 0
        self._tokenizer = None

    def _tok(self, pl_module):
        if self._tokenizer is None:
            from textflow.data.tokenizers import TextTokenizer

            self._tokenizer = TextTokenizer.from_json(pl_module.run_info["tokenizer"])
        return self._tokenizer

    @torch.no_grad()
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module) -> None:
        if trainer.sanity_checking or self.every_n_validations <= 0 or not trainer.is_global_zero:
            return
        self._validations += 1
        if self._validations % self.every_n_validations or not is_text_flow(pl_module):
            return
        denoiser = pl_module.denoiser(use_ema=True)
        gen = generate(denoiser, self.sampler, num_samples=self.num_samples, seq_len=pl_module.run_info["seq_len"],
                       seed=self.seed, batch_size=self.num_samples, device=pl_module.device)
        seqs = gen.ids.tolist()
        texts = self._tok(pl_module).decode_batch(seqs)
        label = self.sampler.label
        step = trainer.global_step
        log_metrics(trainer.loggers, {f"samples/{label}/{k}": v for k, v in text_metrics(seqs).items()
                                      if k != "num_samples"}, step=step)
        log_text_table(trainer.loggers, f"samples/{label}", ["step", "text"], [[step, t] for t in texts], step=step)
