"""File primitives of a run directory: the driver lock, atomic writes and their leftovers.

**The driver lock.** :class:`DriverLock` is an exclusive ``flock(2)`` on a lock file,
taken without waiting. The operating system releases it when its holder closes the
file or dies (even by SIGKILL), so a crashed driver never leaves a stale lock. The
holder writes its pid, host and start time into the file, so that a refused driver
can say who holds it. The file is opened non-inheritable (workers started by spawn or
``subprocess`` do not hold it). Where ``fcntl`` is missing (Windows), no lock is taken.

**Atomic writes.** :func:`atomic_write` writes a temporary file next to the target
(``.<name>.<random>.tmp``), fsyncs it and renames it over the target, so a reader
sees the old or the new content, never a mix. A process killed mid-write leaves the
temporary file behind: :func:`remove_temporaries` deletes such leftovers (call it
while holding the lock, when no write can be in progress).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pathlib
import socket
import tempfile
import time
from collections.abc import Iterable
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no advisory lock (see the module docstring).
    fcntl = None  # type: ignore[assignment]

__all__ = ["DriverLock", "atomic_write", "is_temporary", "remove_temporaries"]

_TMP_SUFFIX = ".tmp"


class DriverLock:
    """An exclusive advisory lock on ``file``, held until :meth:`release` or process death.

    Args:
        file: The lock file (created if missing; never deleted, since deleting a lock
            file while another process opens it would let two processes hold "the" lock).

    Example:
        >>> import pathlib, tempfile
        >>> file = pathlib.Path(tempfile.mkdtemp()) / "driver.lock"
        >>> first, second = DriverLock(file), DriverLock(file)
        >>> first.acquire(), second.acquire()
        (True, False)
        >>> second.holder()["pid"] == os.getpid()
        True
        >>> first.release()
        >>> second.acquire()
        True
        >>> second.release()
    """

    def __init__(self, file: str | os.PathLike[str]) -> None:
        self.file = pathlib.Path(file)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> bool:
        """Takes the lock without waiting; False when another holder has it.

        Raises:
            OSError: If the file system does not support ``flock`` (some network and
                FUSE file systems answer ``ENOLCK`` or ``EOPNOTSUPP``).
        """
        if self._fd is not None:
            return True
        fd = os.open(self.file, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    return False
                raise
        self._fd = fd
        info = {"pid": os.getpid(), "host": socket.gethostname(), "time": time.time()}
        with contextlib.suppress(OSError):  # Only informative: a failure is harmless.
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode("utf-8"), 0)
        return True

    def holder(self) -> dict[str, Any]:
        """What the holder wrote (``pid``, ``host``, ``time``), or ``{}`` if unreadable."""
        try:
            info = json.loads(self.file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return info if isinstance(info, dict) else {}

    def release(self) -> None:
        """Releases the lock (closing the file releases it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


def atomic_write(file: pathlib.Path, data: bytes, fsync: bool) -> None:
    """Writes ``data`` to ``file`` through a temporary file and ``os.replace``.

    Example:
        >>> import pathlib, tempfile
        >>> file = pathlib.Path(tempfile.mkdtemp()) / "config.json"
        >>> atomic_write(file, b"{}", fsync=False)
        >>> file.read_bytes(), [p.name for p in file.parent.iterdir()]
        (b'{}', ['config.json'])
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{file.name}.", suffix=_TMP_SUFFIX, dir=file.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, file)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if fsync:
        with contextlib.suppress(OSError):
            dir_fd = os.open(file.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


def is_temporary(name: str, targets: Iterable[str]) -> bool:
    """Whether ``name`` is a temporary file of :func:`atomic_write` for one of ``targets``.

    Example:
        >>> is_temporary(".config.json.x1y2.tmp", ["config.json"])
        True
        >>> is_temporary("config.json", ["config.json"])
        False
    """
    return name.endswith(_TMP_SUFFIX) and any(
        name.startswith(f".{target}.") and len(name) > len(target) + 2 + len(_TMP_SUFFIX)
        for target in targets
    )


def remove_temporaries(directory: pathlib.Path, targets: Iterable[str]) -> list[str]:
    """Deletes leftover temporary files of ``targets`` in ``directory``; returns their names.

    Example:
        >>> import pathlib, tempfile
        >>> directory = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (directory / ".checkpoint.pt.abc.tmp").write_bytes(b"torn")
        >>> remove_temporaries(directory, ["checkpoint.pt"]), list(directory.iterdir())
        (['.checkpoint.pt.abc.tmp'], [])
    """
    targets = list(targets)
    removed = []
    for entry in sorted(directory.iterdir()) if directory.is_dir() else []:
        if is_temporary(entry.name, targets) and entry.is_file():
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                removed.append(entry.name)
    return removed
