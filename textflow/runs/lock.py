"""A live run holds its folder: ``<run dir>/.textflow.lock`` (docs/reliability.md, "run folders").

The lock is an ``flock`` on that file, which the kernel releases when the holding process dies, plus
the holder's pid, host and start time written inside it for the messages. A second run into a held
folder is refused with one line naming the holder; a lock file left by a dead process (the flock is
free but the file still names a pid) is taken over with a one-line notice. Under DDP only global rank
zero takes the lock (the other ranks share its folder).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from textflow.errors import TextflowError

LOCK_NAME = ".textflow.lock"


class RunFolderBusy(TextflowError):
    """Another live run holds the folder."""


def _holder(path: Path) -> dict:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}


def _describe(holder: dict) -> str:
    if not holder:
        return "another process"
    return f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('started')}"


def folder_busy(folder: str | Path) -> str | None:
    """A description of the live run holding ``folder``, or None if it is free (checks without taking)."""
    path = Path(folder) / LOCK_NAME
    if not path.is_file():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _describe(_holder(path))
    finally:
        os.close(fd)
    return None


def busy_message(folder: str | Path, holder: str) -> str:
    return (f"run folder {folder} is in use by a live run ({holder}); wait for it to finish or choose another "
            "folder (hydra.run.dir=...)")


class RunFolderLock:
    """Context manager holding ``folder`` for this process (a no-op on non-zero DDP ranks)."""

    def __init__(self, folder: str | Path, *, rank: int = 0):
        self.folder, self.rank = Path(folder), int(rank)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> "RunFolderLock":
        if self.rank != 0:
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise RunFolderBusy(busy_message(self.folder, _describe(_holder(self.path)))) from None
            try:
                if os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                    break  # we hold the file that is in place (not one a finishing holder just removed)
            except FileNotFoundError:
                pass
            os.close(fd)
        stale = _holder(self.path)
        if stale.get("pid"):
            print(f"[textflow] taking over the stale lock of {self.folder} left by {_describe(stale)} "
                  "(that process is gone)", file=sys.stderr)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                  "started": time.strftime("%Y-%m-%d %H:%M:%S")}).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass  # the folder itself may be gone or read-only: the flock still ends with the fd
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "RunFolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")  # Lightning's order


def global_rank() -> int:
    """This process's global rank (0 outside DDP): Lightning's ``rank_zero_only.rank`` once Lightning is
    loaded (a strategy may have set it), else the launcher's environment read as Lightning reads it, so
    ``sample.py`` can check its output folder without importing Lightning (3 s on a small CPU)."""
    if "lightning.pytorch" in sys.modules:
        from lightning.pytorch.utilities import rank_zero_only

        return int(getattr(rank_zero_only, "rank", 0) or 0)
    for key in RANK_VARIABLES:
        if os.environ.get(key) is not None:
            return int(os.environ[key])
    return 0
