"""Journal records: their kinds, how each is written and how a journal is read back.

A run's journal (``journal.jsonl`` in the run directory, see
:mod:`symbolic_nas.storage.rundir`) holds one plain JSON record per event, never
pickle. Every record carries an ``event`` key whose value is an :class:`EventKind`;
the writer of each kind below is its schema, and :func:`read_history` and
:func:`~symbolic_nas.storage.resume.replay` are its reader.
:class:`~symbolic_nas.storage.rundir.Run` adds the run's id (``run_id``) to every
record it appends.

* ``run`` (:func:`run_record`): a session starts (``session``, ``resumed``,
  ``num_trials``, ``time``, ``pid``, and ``settings``: see
  :func:`~symbolic_nas.storage.resume.settings`).
* ``propose`` (:func:`propose_record`): the algorithm proposed trial ``trial``
  with ``tokens`` (plus its ``version`` and ``meta``, and ``floats``, the exact
  float values by decision index, when it has some). Written right after
  ``algorithm.propose()``; ``replaces`` marks a re-journaled proposal.
* ``start`` (:func:`start_record`): attempt ``attempt`` of trial ``trial`` was
  handed to ``worker``; a re-run says why in ``cause``: ``"worker_died"`` (after a
  ``lost`` record) or ``"driver_stopped"`` (the driver stopped or died while the
  trial ran). Only worker deaths count against ``max_retries``.
* ``lost`` (:func:`lost_record`): the worker running trial ``trial`` died; the
  trial is run again.
* ``end`` (:func:`end_record`): trial ``trial`` (a full
  :meth:`~symbolic_nas.storage.trial.Trial.to_record`, with its ``floats``)
  finished, and ``feedback`` (a float or None) is what the algorithm is told;
  ``labels`` (when the trial knows its codec) maps each active decision's name to
  its choice's label. Written right before ``algorithm.feedback()``.
* ``stop`` (:func:`stop_record`): a session ended (``reason``).

Every record but ``end`` also has its wall-clock ``time``. A record of a kind this
version does not know is skipped by the reader; one of a known kind whose fields
have the wrong types is refused, naming the file and line
(:mod:`symbolic_nas.storage.record_shapes`).

How a run resumes from its journal and checkpoint (``replay``) is told in
:mod:`symbolic_nas.storage.resume`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from symbolic_nas.space.codec import Codec
from symbolic_nas.space.floats import floats_to_json
from symbolic_nas.storage.rundir import ResumeError
from symbolic_nas.storage.trial import StrEnum, Trial

if TYPE_CHECKING:
    from symbolic_nas.algorithms.base import Proposal

__all__ = [
    "EventKind",
    "History",
    "end_record",
    "event_of",
    "lost_record",
    "propose_record",
    "read_history",
    "report_record",
    "run_record",
    "start_record",
    "stop_record",
]


class EventKind(StrEnum):
    """The kind of a journal record: the value of its ``event`` key.

    Members are strings (a :class:`~symbolic_nas.storage.trial.StrEnum`, printed
    and formatted as their value), so they compare equal to the plain strings
    of journals on disk.

    Example:
        >>> EventKind("end") is EventKind.END, EventKind.END == "end", f"{EventKind.END}"
        (True, True, 'end')
    """

    RUN = "run"
    PROPOSE = "propose"
    START = "start"
    LOST = "lost"
    END = "end"
    STOP = "stop"
    REPORT = "report"


_KINDS = {kind.value: kind for kind in EventKind}


# ---------------------------------------------------------------------- writers


def run_record(
    *,
    session: int,
    resumed: bool,
    num_trials: int,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The record of a session's start (this process's id and the time included).

    Args:
        session: The session's number (1 for a new run).
        resumed: Whether it continues a run.
        num_trials: Its ``num_trials``.
        settings: How it runs (:func:`~symbolic_nas.storage.resume.settings`),
            compared when replay diverges.

    Example:
        >>> record = run_record(session=2, resumed=True, num_trials=50)
        >>> record["event"], record["session"], sorted(record)
        ('run', 2, ['event', 'num_trials', 'pid', 'resumed', 'session', 'time'])
    """
    record = {
        "event": EventKind.RUN.value,
        "session": session,
        "resumed": resumed,
        "num_trials": num_trials,
        "time": time.time(),
        "pid": os.getpid(),
    }
    if settings is not None:
        record["settings"] = dict(settings)
    return record


def propose_record(proposal: Proposal, *, replaces: bool = False) -> dict[str, Any]:
    """The record of a proposal, written right after ``algorithm.propose()``.

    Args:
        proposal: The algorithm's proposal.
        replaces: Whether it replaces the journaled tokens of an unfinished trial
            (re-proposed differently while replaying).

    Example:
        >>> from symbolic_nas.algorithms import Proposal
        >>> record = propose_record(Proposal(3, [1, 0], version=2))
        >>> {k: record[k] for k in ("event", "trial", "tokens", "version", "meta")}
        {'event': 'propose', 'trial': 3, 'tokens': [1, 0], 'version': 2, 'meta': {}}
        >>> propose_record(Proposal(3, [1, 0]), replaces=True)["replaces"]
        True
    """
    record = {
        "event": EventKind.PROPOSE.value,
        "trial": proposal.id,
        "tokens": list(proposal.tokens),
        "version": proposal.version,
        "meta": dict(proposal.meta),
        "time": time.time(),
    }
    if proposal.floats:
        record["floats"] = floats_to_json(proposal.floats)
    if replaces:
        record["replaces"] = True
    return record


def start_record(trial: Trial, *, cause: str | None = None) -> dict[str, Any]:
    """The record of an attempt handed to a worker: the trial's ``attempts``,
    ``worker`` and ``started`` as set when it was submitted.

    Args:
        trial: The trial.
        cause: Why a trial that started before starts again (see
            :meth:`History.rerun_cause`); None for a first start.

    Example:
        >>> start_record(Trial(5, [0], attempts=2, worker="w1", started=10.0))
        {'event': 'start', 'trial': 5, 'attempt': 2, 'worker': 'w1', 'time': 10.0}
        >>> start_record(Trial(5, [0], attempts=3), cause="worker_died")["cause"]
        'worker_died'
    """
    record = {
        "event": EventKind.START.value,
        "trial": trial.id,
        "attempt": trial.attempts,
        "worker": trial.worker,
        "time": trial.started,
    }
    if cause is not None:
        record["cause"] = cause
    return record


def lost_record(trial: Trial, error: str | None) -> dict[str, Any]:
    """The record of an attempt whose worker died (the trial is run again).

    Example:
        >>> record = lost_record(Trial(5, [0], attempts=1), "WorkerDied: killed")
        >>> record["event"], record["trial"], record["attempt"], record["error"]
        ('lost', 5, 1, 'WorkerDied: killed')
    """
    return {
        "event": EventKind.LOST.value,
        "trial": trial.id,
        "attempt": trial.attempts,
        "error": error,
        "time": time.time(),
    }


def report_record(
    trial_id: int, step: float, value: float, metrics: Mapping[str, Any], *, pruned: bool
) -> dict[str, Any]:
    """The record of an intermediate report of a running trial and the pruner's answer.

    Example:
        >>> record = report_record(5, 2, 0.75, {"loss": 0.4}, pruned=True)
        >>> record["event"], record["trial"], record["step"], record["value"], record["pruned"]
        ('report', 5, 2, 0.75, True)
    """
    return {
        "event": EventKind.REPORT.value,
        "trial": trial_id,
        "step": step,
        "value": value,
        "metrics": dict(metrics),
        "pruned": pruned,
        "time": time.time(),
    }


def end_record(
    trial: Trial, feedback: float | None, *, objectives: list[float] | None = None
) -> dict[str, Any]:
    """The record of a finished trial, written right before ``algorithm.feedback()``.

    Args:
        trial: The finished trial (stored whole, see :meth:`Trial.to_record`).
        feedback: What the algorithm is told (None: no learning signal).
        objectives: The objective vector the algorithm is told with it (a search
            with several objectives), recorded only when given.

    Example:
        >>> record = end_record(Trial(5, [0], status="completed", reward=0.5), 0.5)
        >>> record["event"], record["trial"]["status"], record["feedback"]
        ('end', 'completed', 0.5)
        >>> import symbolic_nas as sn
        >>> codec = sn.encode({"act": sn.oneof({"relu": "r", "gelu": "g"})})
        >>> end_record(Trial(5, [1], codec=codec), None)["labels"]
        {'act': 'gelu'}
    """
    record: dict[str, Any] = {
        "event": EventKind.END.value,
        "trial": trial.to_record(),
        "feedback": feedback,
    }
    if objectives is not None:
        record["objectives"] = list(objectives)
    if trial.codec is not None:
        with contextlib.suppress(ValueError):  # invalid tokens: the trial's error says so
            record["labels"] = trial.codec.labels(trial.tokens, trial.floats)
    return record


def stop_record(reason: str) -> dict[str, Any]:
    """The record of a session's end (``"completed"``, ``"interrupted"``, ...).

    Example:
        >>> record = stop_record("interrupted")
        >>> record["event"], record["reason"]
        ('stop', 'interrupted')
    """
    return {"event": EventKind.STOP.value, "reason": reason, "time": time.time()}


# ---------------------------------------------------------------------- reader


def event_of(record: Mapping[str, Any]) -> EventKind | None:
    """The kind of a record, or None for a kind this version does not know.

    Example:
        >>> event_of({"event": "end"}), event_of({"event": "note"}), event_of({})
        (<EventKind.END: 'end'>, None, None)
    """
    event = record.get("event")
    return _KINDS.get(event) if isinstance(event, str) else None


class History:
    """What a journal says about a run's trials.

    Attributes:
        finished: Finished trials by id (the ``end`` record of each id).
        proposals: The last ``propose`` record of each trial id.
        attempts: How many times each trial was started.
        deaths: How many times each trial's worker died (``lost`` records).
        sessions: How many sessions (``run`` records) the journal holds.
    """

    def __init__(self) -> None:
        self.finished: dict[int, Trial] = {}
        self.proposals: dict[int, dict[str, Any]] = {}
        self.attempts: dict[int, int] = {}
        self.deaths: dict[int, int] = {}
        self.sessions = 0
        self._last_event: dict[int, EventKind] = {}

    @property
    def unfinished(self) -> list[int]:
        """Ids of proposed trials without an ``end`` record, in id order."""
        return sorted(set(self.proposals) - set(self.finished))

    def rerun_cause(self, trial_id: int) -> str | None:
        """Why an unfinished trial that was started is started again: ``"worker_died"``,
        ``"driver_stopped"``, or None (it never started)."""
        last = self._last_event.get(trial_id)
        if last is EventKind.LOST:
            return "worker_died"
        return "driver_stopped" if last is EventKind.START else None


def read_history(records: list[dict[str, Any]], codec: Codec | None = None) -> History:
    """Folds journal records into a :class:`History`.

    Raises:
        ResumeError: If the journal is corrupt: a trial ends twice (whichever ``end``
            came first), or ends without a proposal or with other tokens than it was
            (last) proposed with.

    Example:
        >>> records = [
        ...     {"event": "propose", "trial": 0, "tokens": [1]},
        ...     {"event": "start", "trial": 0, "attempt": 1},
        ...     {"event": "end", "trial": {"id": 0, "tokens": [1], "status": "completed",
        ...                                  "reward": 0.5}, "feedback": 0.5},
        ...     {"event": "propose", "trial": 1, "tokens": [0]},
        ... ]
        >>> history = read_history(records)
        >>> sorted(history.finished), history.unfinished
        ([0], [1])
        >>> try:
        ...     read_history(records + records[2:3])
        ... except ResumeError as e:
        ...     print(str(e).split(";")[0])
        the journal is corrupt: record 5 is a second `end` of trial 0 (the first is record 3)
    """
    history = History()
    ended_at: dict[int, int] = {}
    for number, record in enumerate(records, start=1):
        event = event_of(record)
        if event is EventKind.RUN:
            history.sessions += 1
        elif event is EventKind.PROPOSE:
            history.proposals[int(record["trial"])] = record
            history._last_event[int(record["trial"])] = event
        elif event is EventKind.START or event is EventKind.LOST:
            trial_id = int(record["trial"])
            counts = history.attempts if event is EventKind.START else history.deaths
            counts[trial_id] = counts.get(trial_id, 0) + 1
            history._last_event[trial_id] = event
        elif event is EventKind.END:
            trial = Trial.from_record(record["trial"], codec)
            if isinstance(record.get("labels"), dict):
                trial.labels = {str(k): str(v) for k, v in record["labels"].items()}
            _check_end(number, trial, ended_at, history.proposals.get(trial.id))
            ended_at[trial.id] = number
            history.finished[trial.id] = trial
    return history


def _check_end(
    number: int, trial: Trial, ended_at: dict[int, int], proposal: dict[str, Any] | None
) -> None:
    problem = None
    if trial.id in ended_at:
        problem = (
            f"is a second `end` of trial {trial.id} (the first is record "
            f"{ended_at[trial.id]}); a trial ends once"
        )
    elif proposal is None:
        problem = f"ends trial {trial.id}, which was never proposed"
    elif [int(t) for t in proposal["tokens"]] != trial.tokens:
        problem = (
            f"ends trial {trial.id} with tokens {trial.tokens}, but it was proposed as "
            f"{[int(t) for t in proposal['tokens']]}"
        )
    if problem is not None:
        raise ResumeError(f"the journal is corrupt: record {number} {problem}")
