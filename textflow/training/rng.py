"""Per-step training randomness: every training step draws from its own seeded stream.

Lightning checkpoints weights, optimizer, scheduler and loop counters, but not the global torch RNG,
and validation, callbacks and dataloader iterators consume that RNG between steps. So the training
times, the flow noise (``torch.randn_like``) and the autoencoders' own ``loss()`` noise of step ``s``
would depend on everything that ran before it, and a resumed run would draw different noise than an
uninterrupted one. :class:`SeededTrainingSteps` re-seeds the global torch RNG at the start of every
training batch from ``stream_seed(seed, "train-step", global_step)``, so all randomness inside a step
is a function of (run seed, step) alone, whatever ran in between (docs/reliability.md, "Resuming a
run"). ``torch.manual_seed`` also seeds every CUDA device (lazily, when CUDA starts).

The run seed is the one ``seed_everything`` published in ``PL_GLOBAL_SEED`` (train.py sets it from
``seed=``; 0 when unset). Under DDP each rank gets its own stream (rank 0 keeps the plain one), and
with ``accumulate_grad_batches > 1`` each micro-batch of a step does too.
"""

from __future__ import annotations

import torch

from textflow.noise import run_seed, stream_seed


def training_step_seed(step: int, *, rank: int = 0, micro_batch: int = 0, seed: int | None = None) -> int:
    """The seed of training step ``step``: ``stream_seed(seed, "train-step", step)`` on rank 0 for the
    first micro-batch; other ranks and micro-batches get streams of their own."""
    stream = "train-step" if rank == 0 and micro_batch == 0 else f"train-step/rank{rank}/micro{micro_batch}"
    return stream_seed(run_seed() if seed is None else seed, stream, step)


class SeededTrainingSteps:
    """LightningModule mixin: seed the global torch RNG at the start of every training batch.

    List it before ``L.LightningModule`` (``class M(SeededTrainingSteps, L.LightningModule)``). The
    module hook runs after every callback's ``on_train_batch_start`` and right before
    ``training_step``, so nothing else draws from the stream first. A subclass that overrides
    ``on_train_batch_start`` must call ``super().on_train_batch_start(batch, batch_idx)``.
    """

    def on_train_batch_start(self, batch, batch_idx: int):
        trainer = self.trainer
        accumulate = max(int(getattr(trainer, "accumulate_grad_batches", 1) or 1), 1)
        torch.manual_seed(training_step_seed(trainer.global_step, rank=trainer.global_rank,
                                             micro_batch=batch_idx % accumulate))
        return None
