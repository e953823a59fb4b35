"""Trials and search results: what the tuner records and returns.

A *trial* is one proposal's life in the tuner: queued, running, then completed
(with a reward and metrics) or failed (with its error text); its
:class:`TrialStatus` says where it is. Trials are plain data: they serialise to
JSON records for the journal and back.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import sys
from typing import Any

from symbolic_nas.space.codec import Codec
from symbolic_nas.space.dna import LazyDNA
from symbolic_nas.validation import InvalidParameterError

__all__ = ["SearchResult", "StrEnum", "Trial", "TrialStatus"]

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # pragma: no cover - Python 3.10

    class StrEnum(str, enum.Enum):
        """Python 3.11's ``enum.StrEnum``: members are strings, shown as their value."""

        def __str__(self) -> str:
            return str(self.value)

        def __format__(self, format_spec: str) -> str:
            return format(str(self.value), format_spec)


class TrialStatus(StrEnum):
    """Where a trial is in its life; the values are the strings the journal stores.

    A trial is ``QUEUED``, then ``RUNNING``, then ``COMPLETED`` (with a reward) or
    ``FAILED`` (with an error). ``LOST`` is what an attempt comes back as when its
    worker died: the tuner runs the trial again, and a finished trial is never lost.

    Members are strings (a :class:`StrEnum`, printed and formatted as their
    value), so they compare equal to the journal's plain strings and ``json``
    writes them unchanged.

    Example:
        >>> TrialStatus("completed") is TrialStatus.COMPLETED
        True
        >>> TrialStatus.FAILED == "failed", f"{TrialStatus.FAILED}", str(TrialStatus.FAILED)
        (True, 'failed', 'failed')
        >>> [status.value for status in TrialStatus if status.is_finished()]
        ['completed', 'failed']
    """

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    LOST = "lost"

    def is_finished(self) -> bool:
        """Whether a trial with this status is over (completed or failed)."""
        return self is TrialStatus.COMPLETED or self is TrialStatus.FAILED

    @classmethod
    def parse(cls, value: Any) -> TrialStatus:
        """The status named by ``value`` (a member or its string).

        Raises:
            InvalidParameterError: If ``value`` names no status (a ``ValueError``).

        Example:
            >>> TrialStatus.parse("running")
            <TrialStatus.RUNNING: 'running'>
            >>> try:
            ...     TrialStatus.parse("done")
            ... except ValueError as e:
            ...     print(f"{type(e).__name__}: {e}")
            InvalidParameterError: `status` must be one of ('queued', ...), but got 'done'
        """
        try:
            return cls(value)
        except ValueError:
            names = tuple(status.value for status in cls)
            raise InvalidParameterError(
                f"`status` must be one of {names}, but got {value!r}"
            ) from None


@dataclasses.dataclass(eq=False)
class Trial(LazyDNA):
    """One proposal's life in the tuner.

    Attributes:
        id: The proposal id (unique within a run).
        tokens: The architecture as tokens.
        status: A :class:`TrialStatus` (a string naming one is converted).
        reward: The reward fed back to the algorithm (None when failed).
        metrics: Everything the evaluator returned (JSON-able), e.g. ``accuracy``.
        error: The error text of a failed trial.
        attempts: How many times it was started (a trial whose worker died is re-run).
        started: Wall-clock start time (seconds since the epoch) of the last attempt.
        duration: Seconds the last attempt took.
        worker: Which worker ran it.
        codec: The codec of the tokens, which :attr:`dna` needs.
        traceback: The formatted traceback of a failed trial, when there is one.
    """

    id: int
    tokens: list[int]
    status: TrialStatus = TrialStatus.QUEUED
    reward: float | None = None
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    error: str | None = None
    attempts: int = 0
    started: float | None = None
    duration: float | None = None
    worker: str | None = None
    codec: Codec | None = dataclasses.field(default=None, repr=False)
    traceback: str | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.status = TrialStatus.parse(self.status)

    @property
    def done(self) -> bool:
        """Whether the trial is over (its status is finished)."""
        return TrialStatus(self.status).is_finished()

    def to_record(self) -> dict[str, Any]:
        """A JSON-able record (the codec is not included)."""
        return {
            "id": self.id,
            "tokens": list(self.tokens),
            "status": TrialStatus(self.status).value,
            "reward": self.reward,
            "metrics": dict(self.metrics),
            "error": self.error,
            "attempts": self.attempts,
            "started": self.started,
            "duration": self.duration,
            "worker": self.worker,
            "traceback": self.traceback,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any], codec: Codec | None = None) -> Trial:
        """Inverse of :meth:`to_record`."""
        return cls(
            id=int(record["id"]),
            tokens=[int(t) for t in record["tokens"]],
            status=record.get("status", TrialStatus.QUEUED),
            reward=record.get("reward"),
            metrics=dict(record.get("metrics") or {}),
            error=record.get("error"),
            attempts=int(record.get("attempts", 0)),
            started=record.get("started"),
            duration=record.get("duration"),
            worker=record.get("worker"),
            codec=codec,
            traceback=record.get("traceback"),
        )


@dataclasses.dataclass
class SearchResult:
    """What ``sn.search`` returns.

    Attributes:
        trials: Every finished trial (completed and failed), by id.
        codec: The codec of the searched space.
        run_dir: The run directory, or None for an in-memory run.
        algorithm: The algorithm's registered name.
    """

    trials: list[Trial]
    codec: Codec | None = None
    run_dir: str | None = None
    algorithm: str | None = None

    @property
    def completed(self) -> list[Trial]:
        return [t for t in self.trials if t.status == TrialStatus.COMPLETED]

    @property
    def failed(self) -> list[Trial]:
        return [t for t in self.trials if t.status == TrialStatus.FAILED]

    @property
    def best(self) -> Trial | None:
        """The completed trial with the highest finite reward (lowest id on ties)."""
        return next(iter(self.top(1)), None)

    def top(self, k: int) -> list[Trial]:
        """The ``k`` completed trials with the highest rewards, best first."""
        ranked = [
            (t.reward, t)
            for t in self.completed
            if t.reward is not None and math.isfinite(t.reward)
        ]
        ranked.sort(key=lambda rt: (-rt[0], rt[1].id))
        return [t for _, t in ranked[:k]]
