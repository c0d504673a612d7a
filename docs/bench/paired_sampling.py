"""What ``linear_backend_paired.py`` and ``gelu_placement_paired.py`` share: ``ode`` and ``commit`` at K = 4
(batch 32) on a checkpoint, once per choice of a CPU kernel setting, the choices alternated in rounds
(``textflow.bench.runner.time_round_robin``) inside one packing block."""

from typing import Callable, ContextManager

from textflow.bench.runner import time_round_robin
from textflow.checkpoint import load_run
from textflow.kernels.linear import reuse_packed_weights
from textflow.samplers import Sampler
from textflow.sampling.generate import generate


def print_paired_batches(ckpt: str, choices: tuple[str, ...], setting: Callable[[str], ContextManager],
                         repeats: int = 15) -> None:
    """For ``ode`` and ``commit`` at K = 4, print the median seconds per batch of 32 under ``setting(c)``
    for each choice ``c``."""
    loaded = load_run(ckpt)
    den, seq_len = loaded.denoiser(), int(loaded.info["seq_len"])
    for name in ("ode", "commit"):
        sampler = Sampler(name=name, steps=4)

        def batch(choice: str, sampler=sampler):
            def call():
                with setting(choice):
                    generate(den, sampler, num_samples=32, seq_len=seq_len, seed=0, batch_size=32)
            return call

        with reuse_packed_weights():
            timed = time_round_robin({c: batch(c) for c in choices}, warmup=2, repeats=repeats, desc=f"{name} K=4")
        print(f"{ckpt}: {name} K=4 batch 32, median s: "
              + ", ".join(f"{c} {t['median_s']:.3f}" for c, t in timed.items()))
