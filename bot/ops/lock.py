"""The single-instance locks: one bot per store, and one bot per API key on the machine.

Two daemons on one account would fight over every ad, answer every order twice and
kick each other's chat websocket off in a loop. `run` holds two exclusive `flock`s
for the life of the process, released by the kernel when it exits, however it exits:

- the store's: `<store>.lock` beside the store, on its resolved path (a symlink to
  the store from another folder finds the same lock);
- the key's: `p2pbot-<sha256(key)[:16]>.lock` in `$XDG_RUNTIME_DIR`, else in
  `<temp dir>/p2pbot-<uid>/` (per user, mode 700): a second store on the same key
  is refused too. The file name holds a hash of the key, never the key.

Each lock file holds the holder's pid (and the key's, its store), so the refusal
names the other process. `backup` takes neither.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import stat
import tempfile
from pathlib import Path

from pydantic import SecretStr

KEY_LOCK_PREFIX = "p2pbot-"  # .gitignore lists p2pbot-*.lock and *.db.lock


class AlreadyRunning(Exception):
    """Another process holds the store's or the key's lock: exit status 2."""


def lock_path(db: Path) -> Path:
    """The lock file for a store: `<db>.lock` beside the file the path resolves to."""
    real = Path(db).resolve()
    return real.with_name(real.name + ".lock")


def key_lock_dir() -> Path:
    """Where key locks live: $XDG_RUNTIME_DIR, else `<temp dir>/p2pbot-<uid>` (created 700)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and Path(runtime).is_dir():
        return Path(runtime)
    folder = Path(tempfile.gettempdir()) / f"p2pbot-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    st = folder.lstat()  # a folder another user planted, or a symlink, is not ours to trust
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise OSError(f"{folder} is not a folder of this user: cannot lock the API key there "
                      "(set XDG_RUNTIME_DIR to a private folder)")
    return folder


def key_lock_path(api_key: SecretStr) -> Path:
    """The key's lock file: named by a hash of the key, never the key itself."""
    digest = hashlib.sha256(api_key.get_secret_value().encode()).hexdigest()[:16]
    return key_lock_dir() / f"{KEY_LOCK_PREFIX}{digest}.lock"


class FileLock:
    """An exclusive, non-blocking flock on `path`; writes `note` (the pid first) into it."""

    def __init__(self, path: Path, note: str = "") -> None:
        self.path = path
        self.note = note
        self._fd: int | None = None

    def refusal(self, holder: list[str]) -> str:
        """The message when another process holds the lock (`holder`: the lines it wrote)."""
        who = f" (pid {holder[0]})" if holder and holder[0].isdigit() else ""
        return f"another p2pbot{who} holds {self.path}"

    def acquire(self) -> FileLock:
        """Take the lock or raise AlreadyRunning naming the holder."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip().splitlines()
            os.close(fd)
            raise AlreadyRunning(self.refusal(holder)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n{self.note}".encode(), 0)
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

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class InstanceLock(FileLock):
    """The store's lock: `<db>.lock` beside the store's real file."""

    def __init__(self, db: Path) -> None:
        super().__init__(lock_path(db))
        self.db = Path(db)

    def refusal(self, holder: list[str]) -> str:
        """Names the store and the holder's pid."""
        who = f" (pid {holder[0]})" if holder and holder[0].isdigit() else ""
        return (f"another p2pbot is already running on the store {self.db}{who}: it holds "
                f"{self.path}. Two daemons must never run on one account; stop the other one "
                "first (a backup does not need it stopped: `p2pbot backup PATH`)")


class KeyLock(FileLock):
    """The API key's lock, per user and machine, whatever the store."""

    def __init__(self, api_key: SecretStr, db: Path) -> None:
        super().__init__(key_lock_path(api_key), f"{Path(db).resolve()}\n")

    def refusal(self, holder: list[str]) -> str:
        """Names the other process by its pid and its store."""
        pid = holder[0] if holder and holder[0].isdigit() else "unknown pid"
        store = f", store {holder[1]}" if len(holder) > 1 else ""
        return (f"another p2pbot (pid {pid}{store}) is already running with this API key: it "
                f"holds {self.path}. One account, one bot: two would answer every order twice "
                "and kick each other's chat off; stop the other one first")
