"""``TextDataModule``: corpus -> tokenizer -> token ids cached once on disk -> fixed-length blocks.

The tokenizer is built from the train split only. Each split's documents are tokenized once, each
followed by the end-of-text id, and saved as one 1-D array at
``<cache_dir>/tokens/<split>-<hash>.npy`` (hash of the corpus, the tokenizer and the split; uint16
when the vocabulary fits, else int32), then memory-mapped. Every cache file is published "first writer
wins" (``assets.publish``), so processes racing under DDP all read identical, complete files.
Blocks are non-overlapping windows of ``seq_len`` ids; the tail of each split is dropped.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from textflow.assets import publish
from textflow.data.corpora import SPLITS, check_split
from textflow.data.resumable import ResumableDataLoader, resumable_loader
from textflow.data.tokenizers import TextTokenizer
from textflow.errors import ConfigError, DataError


class BlockDataset(Dataset):
    """Fixed-length blocks of a 1-D token array; item ``i`` is ``tokens[starts[i]:starts[i] + seq_len]``
    as a LongTensor of shape ``(seq_len,)``."""

    def __init__(self, tokens: np.ndarray, seq_len: int, starts: np.ndarray):
        self.tokens, self.seq_len, self.starts = tokens, int(seq_len), np.asarray(starts, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> torch.Tensor:
        s = int(self.starts[i])
        return torch.from_numpy(self.tokens[s:s + self.seq_len].astype(np.int64))


def loader_settings(num_workers: int | str, pin_memory: bool | str) -> tuple:
    """Resolve ``auto``: workers and pinned memory only when a CUDA device will consume the batches."""
    cuda = torch.cuda.is_available()
    if num_workers == "auto":
        num_workers = min(4, max((os.cpu_count() or 1) - 1, 0)) if cuda else 0
    if pin_memory == "auto":
        pin_memory = cuda
    return num_workers, pin_memory


class TextDataModule(L.LightningDataModule):
    """Token blocks of a corpus for training and validation.

    Args:
        corpus: a corpus source (``textflow.data.corpora``: ``documents(split)``, ``fingerprint()``).
        tokenizer: a tokenizer spec (``textflow.data.tokenizers``: ``build(texts=, cache_dir=)``,
            ``fingerprint()``); built from the train split.
        seq_len: tokens per block.
        batch_size: training batch size (batches are LongTensors ``(batch_size, seq_len)``).
        cache_dir: downloads, tokenizers and token ids.
        num_workers, pin_memory: DataLoader settings, or ``auto``: with CUDA available, 4 workers (fewer
            on a small machine) and pinned memory, else 0 workers and no pinning (a small CPU gains
            nothing from workers: blocks are mmap slices). Measured in docs/benchmarks.md.
        val_batch_size: defaults to ``batch_size``.
        max_val_blocks: cap on held-out blocks, taken evenly spaced so every held-out document is covered.

    Attributes:
        text_tokenizer: the built :class:`TextTokenizer` (after :meth:`setup_tokenizer`).
        vocab_size: its vocabulary size (builds the tokenizer on first access).
    """

    def __init__(self, *, corpus, tokenizer, seq_len: int, batch_size: int, cache_dir: str,
                 num_workers: int | str = 0, val_batch_size: int | None = None, pin_memory: bool | str = False,
                 max_val_blocks: int | None = None):
        super().__init__()
        for key, value in (("data.seq_len", seq_len), ("data.batch_size", batch_size),
                           ("data.val_batch_size", val_batch_size or 1), ("data.max_val_blocks", max_val_blocks or 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{key}={value!r} is invalid; it must be an integer >= 1")
        num_workers, pin_memory = loader_settings(num_workers, pin_memory)
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ConfigError(f"data.num_workers={num_workers!r} is invalid; it must be an integer >= 0 or auto")
        self.corpus, self.tokenizer_spec = corpus, tokenizer
        self.seq_len, self.batch_size = int(seq_len), int(batch_size)
        self.val_batch_size = int(val_batch_size or batch_size)
        self.cache_dir = Path(str(cache_dir)).expanduser()
        self.num_workers, self.pin_memory, self.max_val_blocks = int(num_workers), bool(pin_memory), max_val_blocks
        self.text_tokenizer: TextTokenizer | None = None
        self._tokens: dict[str, np.ndarray] = {}
        self._n_docs: dict[str, int] = {}
        self._datasets: dict[str, BlockDataset] = {}

    # -- preparation ------------------------------------------------------------------------
    def _documents(self, split: str) -> list[tuple[str, str]]:
        docs = self.corpus.documents(split)
        self._n_docs[split] = len(docs)
        return docs

    def setup_tokenizer(self) -> TextTokenizer:
        """Build (or load from the cache) the tokenizer from the train split; callable before a
        Trainer exists (train.py needs the vocabulary size to build the model). Idempotent."""
        if self.text_tokenizer is None:
            texts = [text for _, text in self._documents("train")]
            self.text_tokenizer = self.tokenizer_spec.build(texts=texts, cache_dir=str(self.cache_dir))
        return self.text_tokenizer

    @property
    def vocab_size(self) -> int:
        return self.setup_tokenizer().vocab_size

    def token_path(self, split: str) -> Path:
        """Cache file of ``split``'s token ids (hash of corpus, tokenizer and split)."""
        check_split(split)
        key = f"{self.corpus.fingerprint()}|{self.setup_tokenizer().fingerprint()}|{split}"
        return self.cache_dir / "tokens" / f"{split}-{hashlib.sha256(key.encode()).hexdigest()[:20]}.npy"

    def tokens(self, split: str) -> np.ndarray:
        """``split``'s token ids as one read-only 1-D array (tokenized once, then memory-mapped)."""
        if split not in self._tokens:
            path = self.token_path(split)
            if not path.is_file():
                tok = self.setup_tokenizer()
                dtype = np.uint16 if tok.vocab_size <= 2**16 else np.int32
                ids = tok.encode_batch([text for _, text in self._documents(split)])
                flat = np.concatenate([np.asarray([*seq, tok.eos_id], dtype=dtype) for seq in ids])
                path.parent.mkdir(parents=True, exist_ok=True)
                with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npy.tmp", delete=False) as fh:
                    np.save(fh, flat)
                publish(Path(fh.name), path)
            self._tokens[split] = np.load(path, mmap_mode="r")
        return self._tokens[split]

    def prepare_data(self) -> None:
        """Download, train the tokenizer and tokenize both splits (all cached on disk)."""
        for split in SPLITS:
            self.tokens(split)

    def _dataset(self, split: str) -> BlockDataset:
        if split not in self._datasets:
            tokens = self.tokens(split)
            n_blocks = len(tokens) // self.seq_len
            if n_blocks == 0:
                raise DataError(f"the {split} split has {len(tokens)} tokens, fewer than one block of "
                                f"data.seq_len={self.seq_len}; lower seq_len or add text")
            starts = np.arange(n_blocks, dtype=np.int64) * self.seq_len
            if split == "val" and self.max_val_blocks and n_blocks > self.max_val_blocks:
                starts = starts[np.linspace(0, n_blocks - 1, int(self.max_val_blocks)).round().astype(np.int64)]
            self._datasets[split] = BlockDataset(tokens, self.seq_len, starts)
        return self._datasets[split]

    def setup(self, stage: str | None = None) -> None:
        """Load (or make) the token caches and the block datasets; a second call does nothing."""
        self.train_set, self.val_set = self._dataset("train"), self._dataset("val")
        if len(self.train_set) < self.batch_size:
            raise DataError(f"the train split has {len(self.train_set)} blocks of {self.seq_len} tokens, "
                            f"fewer than data.batch_size={self.batch_size}; lower batch_size or seq_len")

    # -- loaders ----------------------------------------------------------------------------
    def train_dataloader(self) -> ResumableDataLoader:
        """Shuffled by (run seed, epoch), incomplete last batch dropped, and resumable mid-epoch: a
        checkpoint stores the loader's position (``textflow.data.resumable``)."""
        self.setup()
        return resumable_loader(self.train_set, batch_size=self.batch_size, trainer=self.trainer,
                                num_workers=self.num_workers, pin_memory=self.pin_memory,
                                persistent_workers=self.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        """Held-out blocks in order."""
        self.setup()
        return DataLoader(self.val_set, batch_size=self.val_batch_size, shuffle=False, drop_last=False,
                          num_workers=self.num_workers, pin_memory=self.pin_memory)

    # -- reporting --------------------------------------------------------------------------
    def val_texts(self, n: int) -> list[str]:
        """Up to ``n`` held-out blocks decoded to text (deterministic: evenly spaced over the split)."""
        ds = self._dataset("val")
        picks = np.linspace(0, len(ds) - 1, min(int(n), len(ds))).round().astype(np.int64)
        return self.setup_tokenizer().decode_batch([ds[int(i)].tolist() for i in picks])

    def describe(self) -> dict:
        """A loggable summary: corpus class, documents, tokens and blocks per split, vocab_size, seq_len."""
        out: dict = {"corpus": type(self.corpus).__name__, "tokenizer": type(self.tokenizer_spec).__name__,
                     "vocab_size": self.vocab_size, "seq_len": self.seq_len}
        for split in SPLITS:
            if split not in self._n_docs:
                self._documents(split)
            out[f"{split}_docs"] = self._n_docs[split]
            out[f"{split}_tokens"] = len(self.tokens(split))
            out[f"{split}_blocks"] = len(self._dataset(split))
        return out
