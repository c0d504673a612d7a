"""``TextDataModule``: corpus -> tokenizer -> token ids cached once on disk -> fixed-length blocks.

Documents are joined with the end-of-text token and cut into non-overlapping blocks of ``seq_len``
ids. Token ids are written once per (corpus, tokenizer, split) to ``<cache_dir>/tokens/*.npy``
(atomically, so processes racing under DDP cannot see a half-written file) and memory-mapped after.
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

from textflow.data.tokenizers import TextTokenizer
from textflow.errors import ConfigError, DataError


class BlockDataset(Dataset):
    """Fixed-length blocks of a 1-D token array; ``starts`` are the block offsets."""

    def __init__(self, tokens: np.ndarray, seq_len: int, starts: np.ndarray):
        self.tokens, self.seq_len, self.starts = tokens, seq_len, starts

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> torch.Tensor:
        s = int(self.starts[i])
        return torch.from_numpy(self.tokens[s:s + self.seq_len].astype(np.int64))


class TextDataModule(L.LightningDataModule):
    """Args:
    corpus: a corpus source (``textflow.data.corpora``).
    tokenizer: a tokenizer spec (``textflow.data.tokenizers``); trained / built from the train split.
    seq_len, batch_size: block length and batch size.
    cache_dir: downloads, tokenizers and token ids.
    num_workers, pin_memory: DataLoader settings (0 workers suits a 2-core CPU).
    val_batch_size: defaults to ``batch_size``.
    max_val_blocks: cap on held-out blocks (evenly spaced, so every held-out document is covered).
    """

    def __init__(self, *, corpus, tokenizer, seq_len: int, batch_size: int, cache_dir: str, num_workers: int = 0,
                 val_batch_size: int | None = None, pin_memory: bool = False, max_val_blocks: int | None = None):
        super().__init__()
        for key, value in (("data.seq_len", seq_len), ("data.batch_size", batch_size)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{key}={value!r} is invalid; it must be an integer >= 1")
        self.corpus, self.tokenizer_spec = corpus, tokenizer
        self.seq_len, self.batch_size = int(seq_len), int(batch_size)
        self.val_batch_size = int(val_batch_size or batch_size)
        self.cache_dir = Path(str(cache_dir)).expanduser()
        self.num_workers, self.pin_memory, self.max_val_blocks = int(num_workers), bool(pin_memory), max_val_blocks
        self.text_tokenizer: TextTokenizer | None = None
        self._tokens: dict[str, np.ndarray] = {}

    # -- preparation ------------------------------------------------------------------------
    def setup_tokenizer(self) -> TextTokenizer:
        """Build (or load from the cache) the tokenizer; callable before a Trainer exists."""
        if self.text_tokenizer is None:
            texts = [text for _, text in self.corpus.documents("train")]
            self.text_tokenizer = self.tokenizer_spec.build(texts=texts, cache_dir=str(self.cache_dir),
                                                            corpus_key=self.corpus.fingerprint())
        return self.text_tokenizer

    @property
    def vocab_size(self) -> int:
        return self.setup_tokenizer().vocab_size

    def tokens(self, split: str) -> np.ndarray:
        """The split's token ids as one 1-D array (tokenized once, then memory-mapped)."""
        if split not in self._tokens:
            tok = self.setup_tokenizer()
            key = hashlib.sha256(f"{self.corpus.fingerprint()}|{tok.fingerprint()}|{split}".encode()).hexdigest()[:20]
            path = self.cache_dir / "tokens" / f"{split}-{key}.npy"
            if not path.is_file():
                docs = self.corpus.documents(split)
                dtype = np.uint16 if tok.vocab_size < 2**16 else np.int32
                ids = [np.asarray(seq + [tok.eos_id], dtype=dtype) for seq in tok.encode_batch([t for _, t in docs])]
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npy")
                with os.fdopen(fd, "wb") as fh:
                    np.save(fh, np.concatenate(ids))
                os.replace(tmp, path)
            self._tokens[split] = np.load(path, mmap_mode="r")
        return self._tokens[split]

    def prepare_data(self) -> None:
        for split in ("train", "val"):
            self.tokens(split)

    def _dataset(self, split: str) -> BlockDataset:
        tokens = self.tokens(split)
        n_blocks = len(tokens) // self.seq_len
        if n_blocks == 0:
            raise DataError(f"the {split} split has {len(tokens)} tokens, fewer than one block of "
                            f"data.seq_len={self.seq_len}; lower seq_len or add text")
        starts = np.arange(n_blocks) * self.seq_len
        if split == "val" and self.max_val_blocks and n_blocks > self.max_val_blocks:
            starts = starts[np.linspace(0, n_blocks - 1, int(self.max_val_blocks)).round().astype(int)]
        return BlockDataset(tokens, self.seq_len, starts)

    def setup(self, stage: str | None = None) -> None:
        if not hasattr(self, "train_set"):
            self.train_set, self.val_set = self._dataset("train"), self._dataset("val")
            if len(self.train_set) < self.batch_size:
                raise DataError(f"the train split has {len(self.train_set)} blocks of {self.seq_len} tokens, "
                                f"fewer than data.batch_size={self.batch_size}")

    # -- loaders ----------------------------------------------------------------------------
    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True, drop_last=True,
                          num_workers=self.num_workers, pin_memory=self.pin_memory,
                          persistent_workers=self.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.val_batch_size, shuffle=False, drop_last=False,
                          num_workers=self.num_workers, pin_memory=self.pin_memory)

    # -- reporting --------------------------------------------------------------------------
    def val_texts(self, n: int) -> list[str]:
        """``n`` held-out blocks decoded to text (deterministic: evenly spaced)."""
        ds = self._dataset("val")
        picks = np.linspace(0, len(ds) - 1, min(n, len(ds))).round().astype(int)
        return self.setup_tokenizer().decode_batch([ds[int(i)].tolist() for i in picks])

    def describe(self) -> dict:
        return {"corpus": type(self.corpus).__name__, "vocab_size": self.vocab_size, "seq_len": self.seq_len,
                **{f"{s}_tokens": int(len(self.tokens(s))) for s in ("train", "val")}}
