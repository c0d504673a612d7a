"""Two lines from an exported folder (or a .ckpt) to text: ``textflow.load_pretrained(path).sample(n)``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textflow.checkpoint import LoadedRun, load_run


@dataclass
class Pretrained:
    """A loaded textflow model; ``run`` is the :class:`~textflow.checkpoint.LoadedRun` behind it."""

    run: LoadedRun

    def sample(self, num_samples: int = 4, *, sampler: str = "ode", steps: int = 8, seed: int = 0,
               batch_size: int = 32, **knobs) -> list[str]:
        """``num_samples`` texts from registry sampler ``sampler`` at K = ``steps`` with its ``knobs``
        (e.g. ``gamma=1.0`` for ``sde``); the same seed gives the same texts as ``sample.py``."""
        from textflow.sampling.generate import generate
        from textflow.samplers import Sampler

        chosen = Sampler(name=sampler, steps=steps, **knobs)
        den = chosen.denoiser(self.run, use_ema=True)
        gen = generate(den, chosen, num_samples=num_samples, seq_len=int(self.run.info["seq_len"]), seed=seed,
                       batch_size=batch_size)
        if self.run.tokenizer is None:
            raise ValueError("this model decodes images, not text; use generate() on run.denoiser() instead")
        return self.run.tokenizer.decode_batch(gen.ids.tolist())


def load_pretrained(path: str | Path) -> Pretrained:
    """Load an exported folder (``python -m textflow.export``) or a checkpoint, with every safety check of
    :func:`textflow.checkpoint.read_checkpoint`."""
    return Pretrained(run=load_run(path, key="load_pretrained"))
