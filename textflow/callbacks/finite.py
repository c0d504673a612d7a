"""``FiniteGuard``: training never goes on, or writes a checkpoint, with a non-finite loss or weights.

train.py adds it to every run whatever the ``callbacks`` group says (docs/reliability.md, "no silent
NaN"). It checks the training loss after every step, the weights before every validation, and every
tensor of a checkpoint before it is written. A failure stops the run with one line that names the step
and the last checkpoint written with finite weights (exit status 2 through the entry point).
"""

from __future__ import annotations

import lightning as L
import torch

from textflow.checkpoint import nonfinite_tensors
from textflow.errors import TextflowError


class DivergedError(TextflowError):
    """Training produced a NaN or an infinity."""


class FiniteGuard(L.Callback):
    """Stops training at the first non-finite loss or weight; refuses to save non-finite checkpoints."""

    def __init__(self) -> None:
        self.last_finite_step: int | None = None

    def _last_checkpoint(self, trainer: L.Trainer) -> str:
        paths = [cb.last_model_path or cb.best_model_path for cb in trainer.checkpoint_callbacks]
        paths = [p for p in paths if p]
        if self.last_finite_step is None or not paths:
            return "no checkpoint was written"
        return f"last finite checkpoint: {paths[0]} (step {self.last_finite_step})"

    def _stop(self, trainer: L.Trainer, what: str) -> DivergedError:
        return DivergedError(f"training diverged at step {trainer.global_step}: {what}; {self._last_checkpoint(trainer)}"
                             "; lower module.optimizer.lr or check the data")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if torch.is_tensor(loss) and not bool(torch.isfinite(loss.detach()).all()):
            raise self._stop(trainer, f"train/loss={float(loss.detach().float().mean())}")

    def on_validation_start(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        bad = nonfinite_tensors(pl_module.state_dict().items())
        if bad:
            raise self._stop(trainer, f"{len(bad)} weight tensors are not finite (e.g. {bad[0]})")

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        bad = nonfinite_tensors(checkpoint.get("state_dict", {}).items())
        if bad:
            raise self._stop(trainer, f"refusing to write a checkpoint with {len(bad)} non-finite weight tensors "
                                      f"(e.g. {bad[0]})")
        self.last_finite_step = int(checkpoint.get("global_step", trainer.global_step))
