"""Data: corpus sources, tokenizers and the Lightning data module.

The data module and the resumable loader import Lightning (3 s on a small CPU), so they are loaded on
first use (PEP 562): ``python sample.py`` reads held-out text and tokenizers from here and answers a bad
command line before Lightning is ever imported."""

from importlib import import_module

from textflow.data.corpora import HFDataset, LocalText, Shakespeare
from textflow.data.tokenizers import GPT2BPE, Pretrained, TextTokenizer, TrainedBPE

_ON_FIRST_USE = {"TextDataModule": "textflow.data.datamodule", "ResumableDataLoader": "textflow.data.resumable",
                 "ResumableSampler": "textflow.data.resumable"}

__all__ = ["GPT2BPE", "HFDataset", "LocalText", "Pretrained", "ResumableDataLoader", "ResumableSampler", "Shakespeare",
           "TextDataModule", "TextTokenizer", "TrainedBPE"]


def __getattr__(name: str):
    if name in _ON_FIRST_USE:
        return getattr(import_module(_ON_FIRST_USE[name]), name)
    raise AttributeError(f"module 'textflow.data' has no attribute {name!r}")
