"""The single-instance lock: an exclusive `flock` on a file next to the store.

Two daemons on one account would fight over every ad and answer every order
twice. The lock is held for the life of the process and released by the kernel
when it exits, however it exits. `backup` never takes it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class AlreadyRunning(Exception):
    """Another process holds the store's lock: exit status 2."""


def lock_path(db: Path) -> Path:
    """The lock file for a store: `<db>.lock` beside it."""
    return db.with_name(db.name + ".lock")


class InstanceLock:
    """An exclusive, non-blocking flock on `<db>.lock`; writes the holder's pid into it."""

    def __init__(self, db: Path) -> None:
        self.db = Path(db)
        self.path = lock_path(self.db)
        self._fd: int | None = None

    def acquire(self) -> InstanceLock:
        """Take the lock or raise AlreadyRunning naming the holder."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise AlreadyRunning(
                f"another p2pbot is already running on the store {self.db}{who}: it holds "
                f"{self.path}. Two daemons must never run on one account; stop the other one "
                "first (a backup does not need it stopped: `python run.py backup PATH`)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Let go of the lock (idempotent); the file stays."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def __enter__(self) -> InstanceLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
