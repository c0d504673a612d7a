"""Data: corpus sources, tokenizers and the Lightning data module."""

from textflow.data.corpora import HFDataset, LocalText, Shakespeare
from textflow.data.datamodule import TextDataModule
from textflow.data.resumable import ResumableDataLoader, ResumableSampler
from textflow.data.tokenizers import GPT2BPE, Pretrained, TextTokenizer, TrainedBPE

__all__ = ["GPT2BPE", "HFDataset", "LocalText", "Pretrained", "ResumableDataLoader", "ResumableSampler", "Shakespeare",
           "TextDataModule", "TextTokenizer", "TrainedBPE"]
