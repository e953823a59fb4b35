"""Reading a run directory without resuming it: ``sn.load_run`` and what ``report`` reads.

Reading is read-only: the config and the journal are read, nothing is written,
repaired or locked. A torn last journal line is skipped but left in place, and the
driver lock is not taken, so a run can be read while its driver is still running
(what it shows is the journal up to its last complete record).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from symbolic_nas.space.codec import Codec, encode
from symbolic_nas.storage.records import History, read_history
from symbolic_nas.storage.rundir import ResumeError, Run, space_fingerprint
from symbolic_nas.storage.trial import SearchResult

__all__ = ["RunRecords", "load_run", "read_run"]


@dataclasses.dataclass
class RunRecords:
    """What a run directory holds, as read by :func:`read_run`.

    Attributes:
        run_dir: The run directory.
        config: Its ``config.json``.
        history: Its journal folded into a :class:`~symbolic_nas.storage.records.History`.
        torn: Whether the journal's last line is torn (skipped; a crash cut its write
            short, or the driver is writing it; ``resume`` repairs it).
    """

    run_dir: str
    config: dict[str, Any]
    history: History
    torn: bool = False

    def result(self, codec: Codec | None = None) -> SearchResult:
        """The finished trials as a :class:`~symbolic_nas.storage.trial.SearchResult`."""
        trials = sorted(self.history.finished.values(), key=lambda t: t.id)
        for trial in trials:
            trial.codec = codec
        return SearchResult(
            trials=trials,
            codec=codec,
            run_dir=self.run_dir,
            algorithm=self.config.get("algorithm"),
            objectives=(self.config.get("objectives") or {}).get("directions"),
        )


def read_run(run_dir: str | os.PathLike[str]) -> RunRecords:
    """Reads a run directory's config and journal, read-only.

    Raises:
        ResumeError: If ``run_dir`` holds no run, or its files are corrupt or of
            another run.
    """
    path = os.fspath(run_dir)
    if not os.path.isdir(path):
        raise ResumeError(f"`run_dir` must be a run directory, but {path!r} is not a directory")
    run = Run(path)
    config = run.read_config()
    try:
        records, torn = run.read_records()
    except ValueError as e:  # A corrupt line before the last one, or a record's shape.
        raise ResumeError(
            f"{e}. `symbolic-nas resume` repairs only a torn last line (a write cut short by "
            "a crash); a damaged line before it means the file was changed by something "
            "else: restore it from a copy"
        ) from None
    return RunRecords(path, config, read_history(records), torn)


def load_run(run_dir: str | os.PathLike[str], space: Any = None) -> SearchResult:
    """The result of the run in ``run_dir``, without resuming it.

    Every finished trial (completed and failed), by id, with its journaled
    choice labels (:meth:`~symbolic_nas.storage.trial.Trial.choice_labels`), reward,
    metrics and times. Nothing is written and no lock is taken, so a run can be
    read while its driver is running. Trials know their run directory, so
    ``result.best.load_model(space)`` returns a kept trained model.

    Args:
        run_dir: The run directory.
        space: The run's space (or its codec), optional: with it, trials get the
            codec (``trial.dna``, labels of runs journaled before labels were).

    Raises:
        ResumeError: If ``run_dir`` holds no readable run.
        ValueError: If ``space`` is not the run's space.

    Example:
        >>> import tempfile, symbolic_nas as sn
        >>> run_dir = tempfile.mkdtemp()
        >>> space = {"width": sn.oneof([8, 16])}
        >>> _ = sn.search(space, lambda a: a["width"] / 16, algorithm="random", num_trials=3,
        ...               run_dir=run_dir, tensorboard=False)
        >>> result = sn.load_run(run_dir)
        >>> len(result.trials), result.best.reward, result.best.choice_labels()
        (3, 1.0, {'width': '16'})
    """
    records = read_run(run_dir)
    codec = None
    if space is not None:
        codec = space if isinstance(space, Codec) else encode(space)
        expected = records.config.get("space", {}).get("fingerprint")
        if expected is not None and expected != space_fingerprint(codec):
            raise ValueError(
                f"`space` must be the space of run {records.run_dir!r}, but got another (its "
                f"fingerprint is {space_fingerprint(codec)}, the run's is {expected})"
            )
    return records.result(codec)
