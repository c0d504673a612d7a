"""The smooth control's data: scikit-learn's handwritten digits (1,797 grey 8x8 images, shipped inside
scikit-learn, so offline), scaled to [0, 1] and flattened to 64 pixels. The last ``val_images`` images
are held out; batches are FloatTensors ``(batch_size, 64)``.
"""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from textflow.data.resumable import ResumableDataLoader, resumable_loader
from textflow.errors import ConfigError, DataError


def load_digits_tensor() -> torch.Tensor:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError("data=digits needs scikit-learn: pip install scikit-learn") from None
    return torch.from_numpy(load_digits().images.reshape(-1, 64) / 16.0).float()


class DigitsDataModule(L.LightningDataModule):
    """Args:
    batch_size: training batch size.
    val_images: how many of the last images are held out.
    seq_len: latent tokens per image (the flow's sequence length; equals ``autoencoder.latent_tokens``).
    max_val_blocks: cap on the held-out images validated each time (null = all).
    """

    def __init__(self, *, batch_size: int = 64, val_images: int = 297, seq_len: int = 4,
                 val_batch_size: int | None = None, max_val_blocks: int | None = None):
        super().__init__()
        if batch_size < 1 or val_images < 1:
            raise ConfigError(f"data.batch_size={batch_size} and data.val_images={val_images} must be >= 1")
        self.batch_size, self.val_images, self.seq_len = int(batch_size), int(val_images), int(seq_len)
        self.val_batch_size = int(val_batch_size or batch_size)
        self.max_val_blocks = max_val_blocks
        self._images: torch.Tensor | None = None

    def setup_tokenizer(self):
        """Images have no tokenizer (train.py and the stages then store none in the checkpoint)."""
        return None

    def images(self, split: str) -> torch.Tensor:
        if self._images is None:
            self._images = load_digits_tensor()
        if self.val_images >= len(self._images):
            raise ConfigError(f"data.val_images={self.val_images} leaves no training images "
                              f"(the dataset has {len(self._images)})")
        return self._images[:-self.val_images] if split == "train" else self._images[-self.val_images:]

    def train_dataloader(self) -> ResumableDataLoader:
        """Shuffled by (run seed, epoch), resumable mid-epoch (``textflow.data.resumable``)."""
        return resumable_loader(_Images(self.images("train")), batch_size=self.batch_size, trainer=self.trainer)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(_Images(self.images("val")[:self.max_val_blocks]), batch_size=self.val_batch_size)


class _Images(TensorDataset):
    def __getitem__(self, i: int) -> torch.Tensor:
        return self.tensors[0][i]
