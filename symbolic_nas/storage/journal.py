"""Append-only trial storage behind a two-method interface.

A :class:`Storage` keeps trial records (JSON-compatible dictionaries) in the order
they were appended. Two back ends are provided:

* :class:`InMemoryStorage` keeps records in the process (tests, notebooks).
* :class:`JournalStorage` writes one strict-JSON line per record to a file, flushed
  and ``fsync``-ed per append, and survives a crash mid-write: a torn last line is
  ignored on read and cut away before new records are appended.

Records are JSON-compatible values: ``dict`` (string keys), ``list``/``tuple``,
``str``, ``int``, ``float``, ``bool`` and ``None`` (numpy scalars are converted to
Python numbers). Non-finite floats, which rewards of failed trials can be, are kept
losslessly as ``{"$float": "nan" | "inf" | "-inf"}`` in the file and decoded back to
floats by :meth:`Storage.read`. Both back ends encode a record at append time, so a
record that cannot be stored fails at ``append`` and later changes to the caller's
dictionary do not affect what was stored. Nothing is ever pickled.
"""

from __future__ import annotations

import abc
import contextlib
import json
import math
import os
import pathlib
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["InMemoryStorage", "JournalStorage", "Storage", "read_records"]

_FLOAT_KEY = "$float"
_DICT_KEY = "$dict"
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class Storage(abc.ABC):
    """An append-only sequence of trial records.

    Example:
        >>> storage = InMemoryStorage()
        >>> storage.append({"trial": 0, "reward": 0.5})
        >>> storage.read()
        [{'trial': 0, 'reward': 0.5}]
    """

    @abc.abstractmethod
    def append(self, record: Mapping[str, Any]) -> None:
        """Appends one record.

        Args:
            record: A JSON-compatible mapping with string keys.

        Raises:
            TypeError: If the record holds a value that cannot be stored.
        """

    @abc.abstractmethod
    def read(self) -> list[dict[str, Any]]:
        """Returns all records, oldest first, as fresh dictionaries."""


class InMemoryStorage(Storage):
    """Thread-safe storage kept in the memory of the current process.

    Records go through the same encoding as :class:`JournalStorage`, so both back
    ends accept and return exactly the same values (tuples come back as lists).

    Example:
        >>> storage = InMemoryStorage()
        >>> storage.append({"reward": float("nan"), "ops": ("conv", "pool")})
        >>> storage.read()
        [{'reward': nan, 'ops': ['conv', 'pool']}]
    """

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._lock = threading.Lock()

    def append(self, record: Mapping[str, Any]) -> None:
        line = encode_record(record)
        with self._lock:
            self._lines.append(line)

    def read(self) -> list[dict[str, Any]]:
        with self._lock:
            lines = list(self._lines)
        return [decode_record(line) for line in lines]

    def __len__(self) -> int:
        with self._lock:
            return len(self._lines)

    def __repr__(self) -> str:
        return f"InMemoryStorage(<{len(self)} records>)"


class JournalStorage(Storage):
    """A JSON-lines journal file: one record per line, durable per append.

    Each :meth:`append` is a single ``write`` on a file opened with ``O_APPEND``,
    followed by ``fsync`` (unless ``fsync=False``), under a lock, so threads and
    several ``JournalStorage`` objects on the same file in one process never
    interleave partial lines. Parent directories are created.

    Crash tolerance: a process killed mid-write leaves at most one torn line at
    the end of the file. :meth:`read` ignores a last line that has no newline or
    is not valid JSON, and opening a ``JournalStorage`` on an existing file first
    truncates such a torn tail, so new records start on a clean line. A corrupt
    line anywhere else raises ``ValueError`` naming the file and line number,
    both from :meth:`read` and when opening.

    A ``JournalStorage`` can be pickled: the copy reopens the same file for
    appending without repairing it (only the opening object repairs).

    Args:
        path: The journal file; created if missing.
        fsync: Whether to ``os.fsync`` the file after every append. Without it a
            record survives a process crash but not necessarily a power cut.

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "trials.jsonl"
        >>> journal = JournalStorage(path)
        >>> journal.append({"trial": 0, "reward": float("-inf")})
        >>> path.read_text()
        '{"trial":0,"reward":{"$float":"-inf"}}\\n'
        >>> JournalStorage(path).read()
        [{'trial': 0, 'reward': -inf}]
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        if not isinstance(fsync, bool):
            raise ValueError(f"`fsync` must be a bool, but got {fsync!r}")
        self._path = pathlib.Path(path)
        self._fsync = fsync
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path.parent.mkdir(parents=True, exist_ok=True)
        if self._path.is_dir():
            raise ValueError(f"`path` must be a file, but got directory {str(self._path)!r}")
        self._repair_torn_tail()

    @property
    def path(self) -> pathlib.Path:
        """The journal file."""
        return self._path

    def append(self, record: Mapping[str, Any]) -> None:
        data = (encode_record(record) + "\n").encode("utf-8")
        with self._lock:
            fd = self._open_locked()
            view = memoryview(data)
            while view:  # A regular file takes it in one call; loop just in case.
                written = os.write(fd, view)
                view = view[written:]
            if self._fsync:
                os.fsync(fd)

    def read(self) -> list[dict[str, Any]]:
        try:
            data = self._path.read_bytes()
        except FileNotFoundError:
            return []
        records, _ = _parse_journal(data, self._path)
        return records

    def close(self) -> None:
        """Closes the file handle; a later :meth:`append` reopens it."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> JournalStorage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def __getstate__(self) -> dict[str, Any]:
        return {"path": str(self._path), "fsync": self._fsync}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._path = pathlib.Path(state["path"])
        self._fsync = state["fsync"]
        self._lock = threading.Lock()
        self._fd = None

    def __repr__(self) -> str:
        return f"JournalStorage({str(self._path)!r}, fsync={self._fsync})"

    def _open_locked(self) -> int:
        if self._fd is None:
            existed = self._path.exists()
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
            self._fd = os.open(self._path, flags, 0o644)
            if not existed and self._fsync:
                _fsync_directory(self._path.parent)
        return self._fd

    def _repair_torn_tail(self) -> None:
        try:
            data = self._path.read_bytes()
        except FileNotFoundError:
            return
        _, valid_length = _parse_journal(data, self._path)
        if valid_length < len(data):
            with open(self._path, "r+b") as f:
                f.truncate(valid_length)
                f.flush()
                os.fsync(f.fileno())


def read_records(path: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], bool]:
    """The records of a journal file, read only (nothing is written or repaired), and
    whether its last line is torn.

    A torn last line (a driver may be writing it right now) is skipped, as
    :meth:`JournalStorage.read` does, but left in the file; a missing file has no
    records. This is how a finished or running run is read without resuming it.

    Raises:
        ValueError: If a line other than the last is corrupt.

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "journal.jsonl"
        >>> _ = path.write_text('{"trial":0}\\n{"tri')
        >>> read_records(path), path.read_text()
        (([{'trial': 0}], True), '{"trial":0}\\n{"tri')
    """
    file = pathlib.Path(path)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        return [], False
    records, valid_length = _parse_journal(data, file)
    return records, valid_length < len(data)


def encode_record(record: Mapping[str, Any]) -> str:
    """Encodes a record as one line of strict JSON (no newline).

    Non-finite floats become ``{"$float": "nan" | "inf" | "-inf"}``; a user
    dictionary that would look like such a marker is escaped, so decoding with
    :func:`decode_record` is lossless.

    Args:
        record: A JSON-compatible mapping with string keys.

    Returns:
        The compact JSON text.

    Raises:
        TypeError: If ``record`` is not a mapping or holds an unsupported value.

    Example:
        >>> encode_record({"reward": float("nan"), "epochs": [1, 2]})
        '{"reward":{"$float":"nan"},"epochs":[1,2]}'
    """
    if not isinstance(record, Mapping):
        raise TypeError(f"`record` must be a mapping, but got {record!r}")
    try:
        encoded = _encode(record)
    except _UnstorableError as e:
        raise TypeError(f"record{''.join(e.path)} {e.problem}") from None
    return json.dumps(encoded, allow_nan=False, separators=(",", ":"))


def decode_record(line: str | bytes) -> dict[str, Any]:
    """Decodes one line written by :func:`encode_record`.

    Args:
        line: The JSON text of one record.

    Returns:
        The record, with non-finite float markers turned back into floats.

    Raises:
        ValueError: If the line is not strict JSON or not a JSON object.

    Example:
        >>> decode_record('{"reward":{"$float":"inf"}}')
        {'reward': inf}
    """
    value = json.loads(line, object_hook=_decode_object, parse_constant=_reject_constant)
    if not isinstance(value, dict):
        raise ValueError(f"a record must be a JSON object, but got {value!r}")
    return value


class _UnstorableError(TypeError):
    """Raised inside :func:`_encode`; ``path`` is filled in while unwinding."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path: list[str] = []


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return float(value)
        return {_FLOAT_KEY: "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if isinstance(value, Mapping):
        encoded = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _UnstorableError(f"has a non-string key {key!r}; only str keys are stored")
            try:
                encoded[key] = _encode(item)
            except _UnstorableError as e:
                e.path.insert(0, f"[{key!r}]")
                raise
        if len(encoded) == 1 and next(iter(encoded)) in (_FLOAT_KEY, _DICT_KEY):
            return {_DICT_KEY: [[key, item] for key, item in encoded.items()]}
        return encoded
    if isinstance(value, (list, tuple)):
        encoded_items = []
        for i, item in enumerate(value):
            try:
                encoded_items.append(_encode(item))
            except _UnstorableError as e:
                e.path.insert(0, f"[{i}]")
                raise
        return encoded_items
    if isinstance(value, (np.bool_, np.integer, np.floating)):
        return _encode(value.item())
    raise _UnstorableError(
        f"holds a value of type {type(value).__name__} ({value!r}); storable values "
        "are dict, list, tuple, str, int, float, bool and None"
    )


def _decode_object(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        if _FLOAT_KEY in obj and obj[_FLOAT_KEY] in _NON_FINITE:
            return _NON_FINITE[obj[_FLOAT_KEY]]
        if _DICT_KEY in obj and isinstance(obj[_DICT_KEY], list):
            return dict(obj[_DICT_KEY])
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name!r}")


def _parse_journal(data: bytes, path: pathlib.Path) -> tuple[list[dict[str, Any]], int]:
    """Parses journal bytes into records and the length of the valid prefix."""
    lines = data.split(b"\n")
    # After the final newline: b"" for a clean file, else a torn partial line.
    complete = lines[:-1]
    records: list[dict[str, Any]] = []
    valid_length = 0
    for number, line in enumerate(complete, start=1):
        if line.strip():
            try:
                records.append(decode_record(line))
            except (ValueError, TypeError) as e:  # JSONDecodeError is a ValueError.
                if number == len(complete) and not lines[-1]:
                    break  # A torn (or garbled) last line: drop it.
                raise ValueError(
                    f"journal {str(path)!r} is corrupt at line {number}: {e}"
                ) from None
        valid_length += len(line) + 1
    return records, valid_length


def _fsync_directory(directory: pathlib.Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # Not possible on every platform (e.g. Windows).
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
