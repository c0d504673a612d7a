"""Few-step quality during training: sample at several K and log judge perplexity and entropy, so
checkpoints can be selected by few-step quality (``ModelCheckpoint(monitor="val/gen_ppl_K4")``).
"""

from __future__ import annotations

import lightning as L
import torch

from textflow.callbacks.base import is_text_flow
from textflow.sampling.generate import generate


class PerKValidation(L.Callback):
    """Every ``every_n_validations`` validation runs (0 = off, the CPU default), sample
    ``num_samples`` sequences with ``sampler`` at each K in ``steps`` from the EMA weights and log,
    through ``pl_module.log``:

    ``val/gen_ppl_K{K}`` (when the evaluator has a judge), ``val/entropy_K{K}``,
    ``val/distinct_2_K{K}``, ``val/self_bleu_K{K}``.

    Args:
        sampler: a :class:`textflow.samplers.Sampler` (its ``steps`` is replaced by each K).
        steps: the K to validate.
        evaluator: a :class:`textflow.evaluation.evaluate.Evaluator` (judge or diversity only).
        num_samples, seed: sample count and noise seed (fixed across validations).
    """

    def __init__(self, *, sampler, steps: list[int], evaluator, num_samples: int = 16, seed: int = 0,
                 every_n_validations: int = 0):
        self.samplers = [sampler.with_steps(int(k)) for k in steps]
        self.evaluator, self.num_samples, self.seed = evaluator, int(num_samples), int(seed)
        self.every_n_validations = int(every_n_validations)
        self._validations = 0

    @torch.no_grad()
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module) -> None:
        if trainer.sanity_checking or self.every_n_validations <= 0:
            return
        self._validations += 1
        if self._validations % self.every_n_validations or not is_text_flow(pl_module):
            return
        from textflow.data.tokenizers import TextTokenizer

        tokenizer = TextTokenizer.from_json(pl_module.run_info["tokenizer"])
        for sampler in self.samplers:
            gen = generate(pl_module.denoiser(use_ema=True), sampler, num_samples=self.num_samples,
                           seq_len=pl_module.run_info["seq_len"], seed=self.seed, batch_size=self.num_samples,
                           device=pl_module.device)
            seqs = gen.ids.tolist()
            result = self.evaluator(seqs, tokenizer.decode_batch(seqs), eos=tokenizer.eos_token)
            k = sampler.steps
            values = {f"val/entropy_K{k}": result["unigram_entropy"], f"val/distinct_2_K{k}": result["distinct_2"],
                      f"val/self_bleu_K{k}": result["self_bleu"]}
            if "gen_ppl" in result:
                values[f"val/gen_ppl_K{k}"] = result["gen_ppl"]
            for key, value in values.items():
                pl_module.log(key, float(value), on_epoch=True, batch_size=self.num_samples)
