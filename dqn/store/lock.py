"""One writer at a time per results folder.

Every command that writes under results/<study>/ holds the folder's lock while it reads and
writes the store: an OS file lock (filelock, fcntl on Linux), which the OS releases when the
holder dies, so a crash never leaves the folder locked. A second process waits, after saying
once (one line) who holds it; training runs outside the lock, so two processes can train
different variants of one study at the same time and take turns writing.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

LOCK_NAME = ".lock"
OWNER_NAME = ".lock.owner"
SAY_AFTER_S = 1.0


class LockTimeout(RuntimeError):
    """The folder stayed locked by another process for longer than the caller would wait."""


def _owner(folder: Path) -> str:
    try:
        return (folder / OWNER_NAME).read_text().strip() or "another process"
    except OSError:
        return "another process"


@contextlib.contextmanager
def locked(folder: Path, timeout_s: float | None = None,
           reading: bool = False) -> Iterator[None]:
    """Hold `folder`'s lock (creating the folder); wait for it, printing one line naming the
    holder if it takes more than a second. timeout_s: give up with LockTimeout after that.
    reading: only reading, so a folder where no lock file can be made (read-only) is read
    without one (nobody can be writing there either)."""
    if reading and not os.access(folder, os.W_OK):
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / LOCK_NAME)
    try:
        lock.acquire(timeout=SAY_AFTER_S)
    except Timeout:
        print(f"waiting for {folder}: locked by {_owner(folder)}", file=sys.stderr, flush=True)
        start = time.monotonic()
        while True:
            try:
                lock.acquire(timeout=5.0)
                break
            except Timeout:
                if timeout_s is not None and time.monotonic() - start > timeout_s:
                    raise LockTimeout(f"{folder} is locked by {_owner(folder)}") from None
    try:
        (folder / OWNER_NAME).write_text(
            f"pid {os.getpid()} on {socket.gethostname()} ({' '.join(sys.argv)[:200]})\n")
        yield
    finally:
        lock.release()
