"""A training loader that an interrupted run resumes exactly where it stopped.

:class:`ResumableSampler` shuffles with a permutation that is a function of (seed, epoch) only
(``stream_generator(seed, "train-order", epoch)``), so the order of any epoch can be rebuilt after a
restart; Lightning calls its ``set_epoch`` at every epoch start. :class:`ResumableDataLoader` adds
Lightning's ``_Stateful`` protocol (``state_dict`` / ``load_state_dict``): the fit loop stores
``loader.state_dict()`` in every checkpoint (``loops.fit_loop.state_dict.combined_loader``) and, on
resume, hands it back before the first batch, and the loader then continues the interrupted epoch with
exactly the batches that were not trained on yet. Skipped blocks are never loaded: the sampler starts
past them. docs/reliability.md ("Resuming a run") states the guarantees.

What Lightning (2.6) does, checked by tests/test_resume.py:

* The training fetcher (``_PrefetchDataFetcher``) prefetches one batch ahead only when the loader has
  no length; a sized loader such as this one is not prefetched, so when a checkpoint is written (in
  ``on_train_batch_end``) the batches this loader has yielded in the epoch are exactly the batches
  trained on. ``state_dict`` therefore stores the yielded count, with no correction.
* On resume, ``FitLoop.setup_data`` calls ``load_state_dict`` and then ``iter()`` on the loader
  *before* it calls ``set_epoch`` for the resumed epoch. The iterator here is a generator, so nothing
  is read (epoch, skip) until the first batch is requested, after ``set_epoch``. Lightning itself
  decides whether the run continues the saved epoch (a mid-epoch checkpoint) or starts the next one (a
  checkpoint at an epoch's last batch); the saved position is applied only if the epoch Lightning set
  is the saved one.

Under DDP the sampler shards the permutation by rank itself (as ``DistributedSampler`` does, whose
subclass it is, so Lightning does not wrap it); each rank's loader keeps its own position, and
checkpoints store rank zero's, which equals every rank's (all ranks yield the same number of batches).
"""

from __future__ import annotations

import math
from typing import Any, Iterator

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from textflow.noise import stream_generator
from textflow.noise import run_seed


class ResumableSampler(DistributedSampler):
    """Shuffled indices of ``dataset``: a function of (``seed``, epoch), sharded over ``num_replicas``.

    Like ``DistributedSampler(drop_last=False)``, the permutation is padded (wrapping around) to a
    multiple of ``num_replicas`` and rank ``r`` takes every ``num_replicas``-th index from ``r``; with
    one replica it is the plain permutation. :meth:`skip_next` makes the next iteration start past the
    first ``n`` indices of the current epoch's shard.
    """

    def __init__(self, dataset: Dataset, *, seed: int, num_replicas: int = 1, rank: int = 0):
        super().__init__(dataset, num_replicas=int(num_replicas), rank=int(rank), shuffle=True, seed=int(seed),
                         drop_last=False)
        self._start = 0

    def order(self, epoch: int) -> list[int]:
        """This rank's indices for ``epoch``, in order."""
        n = len(self.dataset)
        perm = torch.randperm(n, generator=stream_generator(self.seed, "train-order", int(epoch)))
        if self.total_size > n:
            perm = perm.repeat(math.ceil(self.total_size / n))[:self.total_size]
        return perm[self.rank:self.total_size:self.num_replicas].tolist()

    def skip_next(self, n: int) -> None:
        """Start the next iteration at position ``n`` of this epoch's order (a one-shot offset)."""
        self._start = max(int(n), 0)

    def __iter__(self) -> Iterator[int]:
        start, self._start = self._start, 0
        return iter(self.order(self.epoch)[start:])


class ResumableDataLoader(DataLoader):
    """A ``DataLoader`` whose position in the epoch is saved in, and restored from, checkpoints.

    Build it with a :class:`ResumableSampler` (``sampler=``) and a ``batch_size``; everything else is
    a plain ``DataLoader`` (workers, pinning, ``drop_last``). The state is
    ``{"epoch": e, "samples": n}``: the epoch being iterated and how many of this rank's indices in it
    were yielded (batches times ``batch_size``; see the module docstring for why no prefetch
    correction is needed).
    """

    _epoch: int = 0  # epoch of the current (or last) iteration
    _samples: int = 0  # indices of that epoch yielded so far, skipped ones included
    _resume: dict | None = None  # state from load_state_dict, applied by the next iteration

    def __iter__(self) -> Iterator[Any]:
        return self._batches()

    def _batches(self) -> Iterator[Any]:
        # A generator: this body starts at the first next(), which in Lightning's fit loop comes after
        # set_epoch(current epoch), also on resume, where iter() itself is called before set_epoch.
        epoch = int(getattr(self.sampler, "epoch", 0))
        resume, self._resume = self._resume, None
        skip = int(resume["samples"]) if resume is not None and int(resume["epoch"]) == epoch else 0
        if skip:
            self.sampler.skip_next(skip)
        self._epoch, self._samples = epoch, skip
        for batch in super().__iter__():
            self._samples = min(self._samples + self.batch_size, len(self.sampler))
            yield batch

    def state_dict(self) -> dict:
        """Where this epoch stands: plain ints (checkpoints are read with ``weights_only=True``)."""
        return {"epoch": int(self._epoch), "samples": int(self._samples)}

    def load_state_dict(self, state_dict: dict) -> None:
        """Continue from ``state_dict`` at the next iteration if it iterates the saved epoch."""
        if not isinstance(self.sampler, ResumableSampler) or self.batch_size is None:
            # e.g. Lightning swapped the sampler (overfit_batches): the epoch restarts from its beginning
            rank_zero_warn("the training loader's sampler is not a ResumableSampler; the resumed epoch starts "
                           "from its first batch")
            return
        self._resume = {"epoch": int(state_dict["epoch"]), "samples": int(state_dict["samples"])}
        self._epoch, self._samples = self._resume["epoch"], self._resume["samples"]


def resumable_loader(dataset: Dataset, *, batch_size: int, trainer=None, seed: int | None = None,
                     **loader_kwargs) -> ResumableDataLoader:
    """A shuffled, resumable training loader over ``dataset`` with ``drop_last=True``.

    ``seed`` defaults to the run seed (``PL_GLOBAL_SEED``, set by ``seed_everything``); the shard is
    ``trainer``'s rank of its world size (one replica without a trainer). ``loader_kwargs`` go to the
    ``DataLoader`` (``num_workers``, ``pin_memory``, ``persistent_workers``).
    """
    replicas, rank = (int(trainer.world_size), int(trainer.global_rank)) if trainer is not None else (1, 0)
    sampler = ResumableSampler(dataset, seed=run_seed() if seed is None else int(seed), num_replicas=replicas,
                               rank=rank)
    return ResumableDataLoader(dataset, batch_size=int(batch_size), sampler=sampler, drop_last=True, **loader_kwargs)
