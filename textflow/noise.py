"""Explicit, batch-invariant randomness.

Every stochastic function in textflow takes ``generator``: either one ``torch.Generator`` (the
whole batch is drawn from it) or a list of generators, one per sample. With one generator per
sample, a sample's noise depends only on its own seed, never on the batch size or on its position in
the batch (the property k-diffusion's users asked for in crowsonkb/k-diffusion#25). Samplers draw
their initial noise first and their churn noise after, so runs that differ only in gamma or K share
the same initial noise.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional, Sequence, Union

import torch
from torch import Tensor

GeneratorArg = Optional[Union[torch.Generator, Sequence[torch.Generator]]]

# Rows of at least this many numbers are drawn on parallel threads (a one-hot latent's row is L x V)
PARALLEL_ROW_NUMEL = 1 << 16
_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}


def run_seed() -> int:
    """The run's base seed: ``PL_GLOBAL_SEED``, which ``lightning.seed_everything`` sets from train.py's
    ``seed=`` (0 when unset). Data order and per-step training noise derive from it (docs/reliability.md)."""
    return int(os.environ.get("PL_GLOBAL_SEED", 0))


def stream_seed(seed: int, stream: str, index: int = 0) -> int:
    """A 63-bit seed for ``(seed, stream, index)``, hashed with BLAKE2b.

    Noise must never replay the stream ``torch.manual_seed(seed)`` starts: that stream initialised the
    weights of a run seeded with ``seed`` (``seed_everything``). With ``Generator().manual_seed(0)``
    the diagnostics of a seed-0 embedding model drew, at position ``(b, l)``, noise equal to the
    initial embedding row of token ``b * L + l``: a boundary-aligned direction, which inflated flip
    rates up to 48x where flips are rare (docs/diagnostics.md). Hashed streams avoid every such replay.
    """
    digest = hashlib.blake2b(f"textflow:{stream}:{int(seed)}:{int(index)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def stream_generator(seed: int, stream: str, index: int = 0, device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` seeded with :func:`stream_seed`."""
    return torch.Generator(device=device).manual_seed(stream_seed(seed, stream, index))


def sample_seed(seed: int, index: int) -> int:
    """The seed of sample ``index`` in a run seeded with ``seed`` (independent of batching)."""
    return stream_seed(seed, "sample", index)


def per_sample_generators(seed: int, indices: Sequence[int], device: str | torch.device = "cpu") -> list:
    """One ``torch.Generator`` per sample, seeded from the run seed and the sample's global index."""
    return [torch.Generator(device=device).manual_seed(sample_seed(seed, i)) for i in indices]


def randn(shape: Sequence[int], *, generator: GeneratorArg, device=None, dtype=None) -> Tensor:
    """Standard normal noise of ``shape``; per-row when ``generator`` is a list (len == shape[0])."""
    if generator is None or isinstance(generator, torch.Generator):
        gen_device = generator.device if isinstance(generator, torch.Generator) else device
        out = torch.randn(tuple(shape), generator=generator, device=gen_device, dtype=dtype)
        return out.to(device) if device is not None else out
    out = per_row(torch.Tensor.normal_, shape, list(generator), dtype)
    return out.to(device) if device is not None else out


def rand(shape: Sequence[int], *, generator: GeneratorArg, device=None, dtype=None) -> Tensor:
    """Uniform [0, 1) noise of ``shape``; per-row when ``generator`` is a list."""
    if generator is None or isinstance(generator, torch.Generator):
        gen_device = generator.device if isinstance(generator, torch.Generator) else device
        out = torch.rand(tuple(shape), generator=generator, device=gen_device, dtype=dtype)
        return out.to(device) if device is not None else out
    out = per_row(torch.Tensor.uniform_, shape, list(generator), dtype)
    return out.to(device) if device is not None else out


def per_row(fill: Callable, shape: Sequence[int], gens: list, dtype=None) -> Tensor:
    """A (len(gens), *shape[1:]) tensor whose row ``i`` is filled in place by ``fill(row, generator=gens[i])``
    (``Tensor.normal_``: what ``torch.randn`` draws; ``Tensor.uniform_``: ``torch.rand``), so every row holds
    exactly the numbers its generator alone would give. Each CPU generator draws on one core; with large rows
    (a one-hot latent's row is L x V) the rows are spread over the intra-op threads (the same numbers, since
    each row has its own generator): 2x faster for 32 rows of 64 x 4,096 on two cores
    (docs/benchmarks.md, "The one-hot quickstart's model")."""
    if len(gens) != shape[0]:
        raise ValueError(f"got {len(gens)} per-sample generators for a batch of {shape[0]}")
    out = torch.empty(tuple(shape), dtype=dtype, device=gens[0].device if gens else None)
    rows = list(zip(out, gens))
    workers = min(torch.get_num_threads(), len(rows))
    if workers < 2 or out.device.type != "cpu" or out[0].numel() < PARALLEL_ROW_NUMEL:
        for row, g in rows:
            fill(row, generator=g)
        return out
    key = (os.getpid(), workers)  # a forked child (a data-loader worker) must not reuse its parent's threads
    if key not in _pools:
        _pools[key] = ThreadPoolExecutor(workers, thread_name_prefix="textflow-noise")
    list(_pools[key].map(lambda pair: fill(pair[0], generator=pair[1]), rows))
    return out
