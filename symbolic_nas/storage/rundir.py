"""The run directory: configuration, journal, algorithm checkpoint, and resuming.

Layout of a run directory::

    config.json        the run's configuration (JSON) and its run id, written atomically
    journal.jsonl      one JSON record per event (JournalStorage; fsync'd at every trial end)
    checkpoint.pt      the algorithm's state_dict, tagged with a journal position
    evaluator.pt       a stateful evaluator's state_dict (a weight-sharing pool), saved with it
    driver.lock        held (flock) by the one driver using the directory; pid and host
    weights/           trained children's state dicts, trial-<id>.pt (with ``keep_weights``)
    tensorboard/       TensorBoard event files (when TensorBoard logging is on)

**One driver at a time.** A session holds ``driver.lock`` from start to end
(:meth:`Run.acquire`, :class:`~symbolic_nas.storage.files.DriverLock`); a second
driver, resuming or not, gets :class:`RunInUseError` naming the holder's pid and
host. The OS releases the lock when the driver dies, so a killed driver never
leaves a stale lock. Under the lock, temporary files left by interrupted atomic
writes (``.config.json.*.tmp``, ``.checkpoint.pt.*.tmp``) are deleted, and a
directory holding only them and the lock file counts as empty.

**Run ids.** A new run gets a random id (``uuid4().hex``) in ``config.json``; every
journal record carries it as ``run_id`` and so does the checkpoint, and a journal
record or checkpoint of another id is refused. An id in every record (rather than a
header record and a running checksum) keeps each line checkable on its own: a record
spliced in from another run is caught where it is, a torn tail is still cut off
without recomputing anything, and ``report`` can check any prefix. What a checksum
would add (catching edited or reordered records of the same run) is covered by the
rules that matter for correctness: a trial ends once, with the tokens it was
proposed with (:func:`~symbolic_nas.storage.records.read_history`). Run directories
of format 1 (before run ids) resume: their next session gives them an id and
records in the config how many journal records came before (``legacy_records``);
those may lack the id, later ones may not, and a checkpoint without an id is
accepted only from that prefix.

The journal's records (their kinds, writers and reader), how the checkpoint
relates to the journal on resume, and the run's budget are described in
:mod:`symbolic_nas.storage.records`.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Mapping
from typing import Any

import torch

from symbolic_nas.space.fingerprint import space_fingerprint
from symbolic_nas.storage.files import DriverLock, atomic_write, is_temporary, remove_temporaries
from symbolic_nas.storage.journal import InMemoryStorage, JournalStorage, Storage, read_records

__all__ = [
    "CHECKPOINT",
    "CONFIG",
    "EVALUATOR",
    "JOURNAL",
    "LOCK",
    "NO_CHECKPOINT_ADVICE",
    "TENSORBOARD",
    "ResumeError",
    "Run",
    "RunInUseError",
    "space_fingerprint",
]

CONFIG = "config.json"
JOURNAL = "journal.jsonl"
CHECKPOINT = "checkpoint.pt"
EVALUATOR = "evaluator.pt"
TENSORBOARD = "tensorboard"
LOCK = "driver.lock"
FORMAT = 2
#: The format of run directories written before run ids; they still resume.
LEGACY_FORMAT = 1

_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")

RUN, PROPOSE, START, LOST, END, STOP = "run", "propose", "start", "lost", "end", "stop"

#: What to do about a checkpoint that cannot be used.
NO_CHECKPOINT_ADVICE = (
    "delete it and resume again: the journal alone restores the run (every finished trial is "
    "kept and the algorithm is rebuilt by replaying the journal)"
)


class ResumeError(RuntimeError):
    """A run directory cannot be resumed as asked (other space, incompatible config...)."""


class RunInUseError(ResumeError):
    """Another driver holds the run directory (its message names the holder's pid and host)."""


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
        >>> run.acquire()
        >>> run.holds_run()
        False
        >>> run.write_config({"num_trials": 3})
        >>> run.append({"event": "run"})
        >>> run.position, run.read_config()["num_trials"]
        (1, 3)
        >>> run.read_journal()[0]["run_id"] == run.run_id
        True
        >>> run.close()
    """

    def __init__(self, path: str | os.PathLike[str] | None, *, fsync: bool = True) -> None:
        self.path = None if path is None else pathlib.Path(path)
        self._fsync = fsync
        self._journal: Storage | None = None
        self._config: dict[str, Any] | None = None
        self._sync_fd: int | None = None
        self._lock: DriverLock | None = None
        self.position = 0
        #: The run's id (None before its config is read or written, and in a format-1
        #: run directory until :meth:`bind` gives it one).
        self.run_id: str | None = None
        # Whether the config was read or written (journal and checkpoint are checked
        # against it), and how many journal records may lack the run id.
        self._config_known = False
        self._unbound_records = 0
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
        """Whether the directory is missing or holds nothing but the lock file and leftover
        temporary files of interrupted writes."""
        if self.path is None or not self.path.exists():
            return True
        return all(_ours_to_ignore(entry.name) for entry in self.path.iterdir())

    # ------------------------------------------------------------------ lock

    def acquire(self) -> None:
        """Makes this the one driver of the directory (created if missing) until :meth:`close`.

        Also deletes temporary files left by interrupted atomic writes. A file system
        without ``flock`` support gets a warning and no lock.

        Raises:
            RunInUseError: If another driver holds the directory.
        """
        if self.path is None or self._lock is not None:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        lock = DriverLock(self.file(LOCK))
        try:
            acquired = lock.acquire()
        except OSError as e:
            warnings.warn(
                f"cannot lock run directory {str(self.path)!r} ({e}); make sure that only one "
                "driver uses it at a time",
                RuntimeWarning,
                stacklevel=2,
            )
            return
        if not acquired:
            holder = lock.holder()
            since = holder.get("time")
            raise RunInUseError(
                f"`run_dir` {str(self.path)!r} is in use by another driver (pid "
                f"{holder.get('pid', '?')} on host {holder.get('host', '?')}"
                + (
                    f", since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since))}"
                    if isinstance(since, (int, float))
                    else ""
                )
                + "); one driver at a time holds a run directory: wait for it to end or stop "
                "it (its lock goes with its process, even when killed)"
            )
        self._lock = lock
        remove_temporaries(self.path, (CONFIG, CHECKPOINT, EVALUATOR))

    # ------------------------------------------------------------------ config

    def read_config(self) -> dict[str, Any]:
        """The run's configuration; sets :attr:`run_id`."""
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
        version = config.get("format") if isinstance(config, dict) else None
        run_id = config.get("run_id") if isinstance(config, dict) else None
        if version not in (FORMAT, LEGACY_FORMAT) or (version == FORMAT) != isinstance(run_id, str):
            raise ResumeError(
                f"{str(file)!r} must be a symbolic_nas run config of format {FORMAT} (or "
                f"{LEGACY_FORMAT}, before run ids), but got format {version!r}"
                + (" without a run id" if version == FORMAT else "")
            )
        self._know_config(config)
        return config

    def write_config(self, config: Mapping[str, Any]) -> None:
        """Writes the configuration atomically (JSON), with the run id (a new one if the
        config has none and this run has none yet)."""
        run_id = config.get("run_id") or self.run_id or uuid.uuid4().hex
        config = {**config, "format": FORMAT, "run_id": run_id}
        text = json.dumps(config, indent=2, sort_keys=True, allow_nan=False) + "\n"
        if self.path is None:
            self._config = json.loads(text)
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            atomic_write(self.file(CONFIG), text.encode("utf-8"), self._fsync)
        self._know_config(config)

    def bind(self, config: Mapping[str, Any], records: int) -> dict[str, Any]:
        """Gives a format-1 run (``config``, before run ids) an id; returns the new config.

        Its first ``records`` journal records stay valid without an id; every later
        record must carry it.
        """
        bound = {**config, "run_id": uuid.uuid4().hex, "legacy_records": records}
        self.write_config(bound)
        return self.read_config() if self.path is not None else bound

    def _know_config(self, config: Mapping[str, Any]) -> None:
        self.run_id = config.get("run_id")
        self._config_known = True
        # Format 1 (no id): no record has one. Bound: the first legacy_records may lack it.
        self._unbound_records = int(config.get("legacy_records", 0)) if self.run_id else sys.maxsize

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
        """All records (a torn last line is dropped); sets :attr:`position`.

        Raises:
            ResumeError: If a record belongs to another run (once the config is known).
            ValueError: Naming the file and line of a corrupt record or one of the
                wrong shape.
        """
        records = self.journal.read()
        if self._config_known:
            for number, record in enumerate(records, start=1):
                self._check_record(number, record)
        if self.path is not None:
            from symbolic_nas.storage.record_shapes import check_records  # (imports this)

            check_records(records, self.file(JOURNAL))
        self.position = len(records)
        return records

    def read_records(self) -> tuple[list[dict[str, Any]], bool]:
        """All records, read only (nothing is repaired, locked or created), and whether
        the journal's last line is torn.

        Unlike :meth:`read_journal` this never truncates a torn last line (it is
        skipped, and stays in the file), so it is safe while a driver is writing
        the journal. Run ids are checked once the config was read.

        Raises:
            ResumeError: If a record belongs to another run (once the config is known).
            ValueError: Naming the file and line of a corrupt record or one of the
                wrong shape.
        """
        if self.path is None:
            return self.journal.read(), False
        from symbolic_nas.storage.record_shapes import check_records  # (imports this)

        records, torn = read_records(self.file(JOURNAL))
        check_records(records, self.file(JOURNAL))
        if self._config_known:
            for number, record in enumerate(records, start=1):
                self._check_record(number, record)
        return records, torn

    def _check_record(self, number: int, record: Mapping[str, Any]) -> None:
        owner = record.get("run_id")
        if owner == self.run_id or (owner is None and number <= self._unbound_records):
            return
        where = f"journal {str(self.file(JOURNAL)) if self.path else '(memory)'!r}"
        if owner is None:
            raise ResumeError(
                f"{where} is corrupt: record {number} has no run id, but every record of "
                f"run {self.run_id} after the first {self._unbound_records} must carry it"
            )
        raise ResumeError(
            f"{where} belongs to another run: record {number} is of run {owner}, but "
            f"{CONFIG} is of run {self.run_id or '(none: format 1)'}; a journal must stay "
            f"with its own {CONFIG}"
        )

    def append(self, record: Mapping[str, Any], *, durable: bool = False) -> None:
        """Appends one record, tagged with the run id, and advances :attr:`position`.

        Every append survives a crash of this process (it is in the operating
        system's hands when this returns); with ``durable``, the journal is also
        fsync'd, so it and every earlier record survive a power cut.
        """
        self.journal.append(record if self.run_id is None else {**record, "run_id": self.run_id})
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
            "run_id": self.run_id,
            "position": self.position,
            "fingerprint": fingerprint,
            "time": time.time(),
            "algorithm": state,
        }
        self._save_torch(CHECKPOINT, payload)

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The last checkpoint (``position``, ``fingerprint``, ``algorithm``), or None.

        Raises:
            ResumeError: If it cannot be loaded, or belongs to another run (with advice:
                deleting it is safe, the journal alone restores the run).
        """
        if self.path is None or not self.file(CHECKPOINT).exists():
            return None
        file = str(self.file(CHECKPOINT))
        try:
            payload = torch.load(file, weights_only=True)
        except Exception as e:  # any unreadable file is reported the same way
            raise ResumeError(
                f"checkpoint {file!r} cannot be read ({e}); {NO_CHECKPOINT_ADVICE}"
            ) from None
        if (
            not isinstance(payload, dict)
            or payload.get("format") not in (FORMAT, LEGACY_FORMAT)
            or isinstance(payload.get("position"), bool)
            or not isinstance(payload.get("position"), int)
            or not isinstance(payload.get("algorithm"), dict)
        ):
            raise ResumeError(
                f"checkpoint {file!r} is not a symbolic_nas checkpoint of format {FORMAT}; "
                f"{NO_CHECKPOINT_ADVICE}"
            )
        owner = payload.get("run_id")
        legacy = owner is None and int(payload.get("position", 0)) <= self._unbound_records
        if self._config_known and owner != self.run_id and not legacy:
            raise ResumeError(
                f"checkpoint {file!r} belongs to another run ("
                + (f"run {owner}" if owner else "it has no run id")
                + f", but {CONFIG} is of run {self.run_id or '(none: format 1)'}); delete it "
                "(the journal alone restores the run) or put back this run's checkpoint"
            )
        return payload

    def save_evaluator_state(self, state: dict[str, Any]) -> None:
        """Saves a stateful evaluator's ``state_dict`` (e.g. a weight-sharing pool)
        atomically as ``evaluator.pt``, tagged with the run id and journal position."""
        if self.path is None:
            return
        payload = {
            "format": FORMAT,
            "run_id": self.run_id,
            "position": self.position,
            "time": time.time(),
            "evaluator": state,
        }
        self._save_torch(EVALUATOR, payload)

    def _save_torch(self, name: str, payload: dict[str, Any]) -> None:
        """Writes ``payload`` with ``torch.save`` to the run's file ``name``, atomically."""
        with tempfile.SpooledTemporaryFile() as buffer:
            torch.save(payload, buffer)
            buffer.seek(0)
            data = buffer.read()
        atomic_write(self.file(name), data, self._fsync)

    def load_evaluator_state(self) -> dict[str, Any] | None:
        """The evaluator state saved by :meth:`save_evaluator_state`, or None if there is none.

        Raises:
            ResumeError: If it cannot be read or belongs to another run.
        """
        if self.path is None or not self.file(EVALUATOR).exists():
            return None
        file = str(self.file(EVALUATOR))
        advice = (
            "delete it to resume with the evaluator's state as it is now (a weight-sharing "
            "search then continues with the pool it was given, e.g. a fresh one)"
        )
        try:
            payload = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as e:  # any unreadable file is reported the same way
            raise ResumeError(f"evaluator state {file!r} cannot be read ({e}); {advice}") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("evaluator"), dict):
            raise ResumeError(f"evaluator state {file!r} is not a symbolic_nas one; {advice}")
        if self._config_known and payload.get("run_id") != self.run_id:
            raise ResumeError(
                f"evaluator state {file!r} belongs to another run (run {payload.get('run_id')}, "
                f"but {CONFIG} is of run {self.run_id}); {advice}"
            )
        return payload["evaluator"]

    def close(self) -> None:
        """Closes the journal and releases the directory's lock."""
        if isinstance(self._journal, JournalStorage):
            self._journal.close()
        if self._sync_fd is not None:
            os.close(self._sync_fd)
            self._sync_fd = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def _ours_to_ignore(name: str) -> bool:
    """The lock file and temporary files of interrupted writes (not a run's content)."""
    return name == LOCK or is_temporary(name, (CONFIG, CHECKPOINT, EVALUATOR))
