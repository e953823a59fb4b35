"""Trials and search results: what the tuner records and returns.

A *trial* is one proposal's life in the tuner: queued, running, then completed
(with a reward and metrics) or failed (with its error text). Trials are plain
data: they serialise to JSON records for the journal and back.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pyglove as pg

from symbolic_nas.space.codec import Codec

__all__ = ["COMPLETED", "FAILED", "QUEUED", "RUNNING", "SearchResult", "Trial"]

QUEUED, RUNNING, COMPLETED, FAILED = "queued", "running", "completed", "failed"
STATUSES = (QUEUED, RUNNING, COMPLETED, FAILED)


@dataclasses.dataclass(eq=False)
class Trial:
    """One proposal's life in the tuner.

    Attributes:
        id: The proposal id (unique within a run).
        tokens: The architecture as tokens.
        status: ``"queued"``, ``"running"``, ``"completed"`` or ``"failed"``.
        reward: The reward fed back to the algorithm (None when failed).
        metrics: Everything the evaluator returned (JSON-able), e.g. ``accuracy``.
        error: The error text of a failed trial.
        attempts: How many times it was started (a trial whose worker died is re-run).
        started: Wall-clock start time (seconds since the epoch) of the last attempt.
        duration: Seconds the last attempt took.
        worker: Which worker ran it.
        traceback: The formatted traceback of a failed trial, when there is one.
    """

    id: int
    tokens: list[int]
    status: str = QUEUED
    reward: float | None = None
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    error: str | None = None
    attempts: int = 0
    started: float | None = None
    duration: float | None = None
    worker: str | None = None
    codec: Codec | None = dataclasses.field(default=None, repr=False)
    _dna: pg.DNA | None = dataclasses.field(default=None, repr=False)
    traceback: str | None = dataclasses.field(default=None, repr=False)

    @property
    def dna(self) -> pg.DNA:
        """The ``pg.DNA`` of the tokens, built on first access."""
        if self._dna is None:
            if self.codec is None:
                raise ValueError(f"trial {self.id} has no codec to build its DNA with")
            self._dna = self.codec.from_tokens(self.tokens)
        return self._dna

    @property
    def done(self) -> bool:
        return self.status in (COMPLETED, FAILED)

    def to_record(self) -> dict[str, Any]:
        """A JSON-able record (the codec is not included)."""
        return {
            "id": self.id,
            "tokens": list(self.tokens),
            "status": self.status,
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
        status = record.get("status", QUEUED)
        if status not in STATUSES:
            raise ValueError(f"`status` must be one of {STATUSES}, but got {status!r}")
        return cls(
            id=int(record["id"]),
            tokens=[int(t) for t in record["tokens"]],
            status=status,
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
        return [t for t in self.trials if t.status == COMPLETED]

    @property
    def failed(self) -> list[Trial]:
        return [t for t in self.trials if t.status == FAILED]

    @property
    def best(self) -> Trial | None:
        """The completed trial with the highest finite reward (lowest id on ties)."""
        return next(iter(self.top(1)), None)

    def top(self, k: int) -> list[Trial]:
        """The ``k`` completed trials with the highest rewards, best first."""
        ranked = [t for t in self.completed if t.reward is not None and math.isfinite(t.reward)]
        ranked.sort(key=lambda t: (-t.reward, t.id))
        return ranked[:k]
