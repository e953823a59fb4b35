"""The run directory: configuration, journal, algorithm checkpoint, and resuming.

Layout of a run directory::

    config.json        the run's configuration (JSON), written once, atomically
    journal.jsonl      one JSON record per event (JournalStorage; fsync'd at every trial end)
    checkpoint.pt      the algorithm's state_dict, tagged with a journal position
    tensorboard/       TensorBoard event files (when TensorBoard logging is on)

The journal's records (their kinds, writers and reader) and how the checkpoint
relates to the journal on resume are described in :mod:`symbolic_nas.storage.records`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pathlib
import re
import tempfile
import time
from collections.abc import Mapping
from typing import Any

import torch

from symbolic_nas.space.codec import Codec
from symbolic_nas.storage.journal import InMemoryStorage, JournalStorage, Storage

__all__ = [
    "CHECKPOINT",
    "CONFIG",
    "JOURNAL",
    "TENSORBOARD",
    "ResumeError",
    "Run",
    "space_fingerprint",
]

CONFIG = "config.json"
JOURNAL = "journal.jsonl"
CHECKPOINT = "checkpoint.pt"
TENSORBOARD = "tensorboard"
FORMAT = 1

_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


class ResumeError(RuntimeError):
    """A run directory cannot be resumed as asked (other space, incompatible config...)."""


def space_fingerprint(codec: Codec) -> str:
    """A hash of a space's structure: decisions, vocabularies, conditions and value labels.

    Memory addresses (``0x7f...``) in labels are masked, since they change from
    process to process; candidates are told apart by their labels (a function
    by its name), not by their code.

    Example:
        >>> import symbolic_nas as sn
        >>> a = space_fingerprint(sn.encode({"k": sn.oneof([3, 5])}))
        >>> a == space_fingerprint(sn.encode({"k": sn.oneof([3, 5])}))
        True
        >>> a == space_fingerprint(sn.encode({"k": sn.oneof([3, 7])}))
        False
    """
    decisions = [
        [
            d.id,
            d.kind,
            d.vocab_size,
            d.parent,
            d.parent_value,
            d.group,
            d.group_index,
            d.group_size,
            d.required,
            d.distinct,
            d.sorted,
            d.low,
            d.high,
            d.scale,
            [_ADDRESS.sub("0x?", label) for label in d.labels],
        ]
        for d in codec.decisions
    ]
    text = json.dumps(
        {"start": int(codec.start), "decisions": decisions, "next": codec.next_table.tolist()},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Run:
    """Storage of one run: a run directory, or memory when ``path`` is None.

    Args:
        path: The run directory, or None for an in-memory run (no config file,
            no checkpoint).
        fsync: Whether the journal and checkpoint are fsync'd (always True in
            searches; False only makes sense in throwaway runs).

    Example:
        >>> import tempfile
        >>> run = Run(tempfile.mkdtemp())
        >>> run.holds_run()
        False
        >>> run.write_config({"num_trials": 3})
        >>> run.append({"event": "run"})
        >>> run.position, run.read_config()["num_trials"]
        (1, 3)
    """

    def __init__(self, path: str | os.PathLike[str] | None, *, fsync: bool = True) -> None:
        self.path = None if path is None else pathlib.Path(path)
        self._fsync = fsync
        self._journal: Storage | None = None
        self._config: dict[str, Any] | None = None
        self._sync_fd: int | None = None
        self.position = 0
        if self.path is not None and self.path.exists() and not self.path.is_dir():
            raise ValueError(f"`run_dir` must be a directory, but got file {str(self.path)!r}")

    # ------------------------------------------------------------------ layout

    def file(self, name: str) -> pathlib.Path:
        if self.path is None:
            raise ValueError("an in-memory run has no files")
        return self.path / name

    def holds_run(self) -> bool:
        """Whether the directory already holds a run (its config or journal)."""
        if self.path is None:
            return False
        return self.file(CONFIG).exists() or self.file(JOURNAL).exists()

    def is_empty(self) -> bool:
        """Whether the directory is missing or has no entries."""
        return self.path is None or not self.path.exists() or not any(self.path.iterdir())

    # ------------------------------------------------------------------ config

    def read_config(self) -> dict[str, Any]:
        """The run's configuration."""
        if self.path is None:
            if self._config is None:
                raise ValueError("this in-memory run has no config yet")
            return dict(self._config)
        file = self.file(CONFIG)
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ResumeError(
                f"`run_dir` {str(self.path)!r} must hold a run (its {CONFIG}), but it has none"
            ) from None
        try:
            config = json.loads(text)
        except ValueError as e:
            raise ResumeError(f"{str(file)!r} is not valid JSON: {e}") from None
        if not isinstance(config, dict) or config.get("format") != FORMAT:
            raise ResumeError(
                f"{str(file)!r} must be a symbolic_nas run config of format {FORMAT}, "
                f"but got format {config.get('format') if isinstance(config, dict) else None!r}"
            )
        return config

    def write_config(self, config: Mapping[str, Any]) -> None:
        """Writes the configuration atomically (JSON)."""
        config = {"format": FORMAT, **config}
        text = json.dumps(config, indent=2, sort_keys=True, allow_nan=False) + "\n"
        if self.path is None:
            self._config = json.loads(text)
            return
        self.path.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.file(CONFIG), text.encode("utf-8"), self._fsync)

    # ------------------------------------------------------------------ journal

    @property
    def journal(self) -> Storage:
        if self._journal is None:
            if self.path is None:
                self._journal = InMemoryStorage()
            else:
                # Appends are not fsync'd one by one: append(durable=True) and checkpoints
                # fsync the file, which makes every earlier append durable too.
                self._journal = JournalStorage(self.file(JOURNAL), fsync=False)
        return self._journal

    def read_journal(self) -> list[dict[str, Any]]:
        """All records (a torn last line is dropped); sets :attr:`position`."""
        records = self.journal.read()
        self.position = len(records)
        return records

    def append(self, record: Mapping[str, Any], *, durable: bool = False) -> None:
        """Appends one record and advances :attr:`position`.

        Every append survives a crash of this process (it is in the operating
        system's hands when this returns); with ``durable``, the journal is also
        fsync'd, so it and every earlier record survive a power cut.
        """
        self.journal.append(record)
        self.position += 1
        if durable:
            self.sync()

    def sync(self) -> None:
        """fsyncs the journal file (a no-op in memory or with ``fsync=False``)."""
        if self.path is None or not self._fsync:
            return
        if self._sync_fd is None:
            self._sync_fd = os.open(self.file(JOURNAL), os.O_RDONLY)
        os.fsync(self._sync_fd)

    # ------------------------------------------------------------------ checkpoint

    def save_checkpoint(self, state: dict[str, Any], fingerprint: str) -> None:
        """Saves an algorithm ``state_dict`` tagged with the current journal position."""
        if self.path is None:
            return
        self.sync()  # The journal must never be behind a durable checkpoint.
        payload = {
            "format": FORMAT,
            "position": self.position,
            "fingerprint": fingerprint,
            "time": time.time(),
            "algorithm": state,
        }
        with tempfile.SpooledTemporaryFile() as buffer:
            torch.save(payload, buffer)
            buffer.seek(0)
            data = buffer.read()
        _atomic_write(self.file(CHECKPOINT), data, self._fsync)

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The last checkpoint (``position``, ``fingerprint``, ``algorithm``), or None."""
        if self.path is None or not self.file(CHECKPOINT).exists():
            return None
        try:
            payload = torch.load(self.file(CHECKPOINT), weights_only=True)
        except Exception as e:  # any unreadable file is reported the same way
            raise ResumeError(
                f"checkpoint {str(self.file(CHECKPOINT))!r} cannot be loaded: {e}"
            ) from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ResumeError(
                f"checkpoint {str(self.file(CHECKPOINT))!r} must be of format {FORMAT}"
            )
        return payload

    def close(self) -> None:
        if isinstance(self._journal, JournalStorage):
            self._journal.close()
        if self._sync_fd is not None:
            os.close(self._sync_fd)
            self._sync_fd = None


def _atomic_write(file: pathlib.Path, data: bytes, fsync: bool) -> None:
    """Writes ``data`` to ``file`` through a temporary file and ``os.replace``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".tmp", dir=file.parent)
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
