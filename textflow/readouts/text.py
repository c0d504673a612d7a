"""What every categorical (text) readout shares: token ids as outputs, held-out text blocks, the
sampler's own trajectory, and text samples reported with the judge and diversity metrics beside held-out
real text (docs/evaluation.md)."""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor

from textflow.kernels import readout_argmax
from textflow.readouts.base import ReadoutKind


class TextReadout(ReadoutKind):
    """A readout whose ``decode`` gives logits over a vocabulary: outputs are their argmax."""

    decodes_tokens = True

    def decode(self, denoiser, latents: Tensor) -> Tensor:
        """Top-1 tokens, a chunk of logits at a time (:func:`textflow.kernels.readout_argmax`)."""
        return readout_argmax(denoiser.readout, latents, head=getattr(denoiser, "readout_head", None))

    def heldout(self, loaded, *, blocks: int) -> Tensor:
        """Evenly spaced held-out blocks of the checkpoint's corpus, in its own tokenizer, (blocks, L)."""
        from textflow.data.heldout import heldout_blocks

        seq_len = int(loaded.info["seq_len"])
        return torch.tensor(heldout_blocks(loaded.config.data.corpus, loaded.tokenizer, seq_len=seq_len, num=blocks))

    def trajectory_recorder(self, path) -> Optional[Callable]:
        """Decode changes (and the commit curve) per step against s(t) (docs/diagnostics.md)."""
        from textflow.diagnostics.trajectory import TrajectoryRecorder

        return TrajectoryRecorder(path)

    def report_samples(self, run, generation, recorder=None):
        """Texts, judge and diversity metrics beside the held-out and shuffled reference rows, CCI."""
        from textflow.readouts.text_samples import report_text

        return report_text(run, generation, recorder,
                           cci_readout=self.cci_readout(run.denoiser.autoencoder, run.seq_len))
