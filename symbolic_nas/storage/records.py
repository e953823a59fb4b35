"""Journal records: their kinds, how each is written and how a journal is read back.

A run's journal (``journal.jsonl`` in the run directory, see
:mod:`symbolic_nas.storage.rundir`) holds one plain JSON record per event, never
pickle. Every record carries an ``event`` key whose value is an :class:`EventKind`;
the writer of each kind below is its schema, and :func:`read_history` and
:func:`replay` are its reader:

* ``run`` (:func:`run_record`): a session starts (``session``, ``resumed``,
  ``num_trials``, ``time``, ``pid``).
* ``propose`` (:func:`propose_record`): the algorithm proposed trial ``trial``
  with ``tokens`` (plus its ``version`` and ``meta``). Written right after
  ``algorithm.propose()``; ``replaces`` marks a re-journaled proposal.
* ``start`` (:func:`start_record`): attempt ``attempt`` of trial ``trial`` was
  handed to ``worker``.
* ``lost`` (:func:`lost_record`): the worker running trial ``trial`` died; the
  trial is run again.
* ``end`` (:func:`end_record`): trial ``trial`` (a full
  :meth:`~symbolic_nas.storage.trial.Trial.to_record`) finished, and ``feedback``
  (a float or None) is what the algorithm is told. Written right before
  ``algorithm.feedback()``.
* ``stop`` (:func:`stop_record`): a session ended (``reason``).

Every record but ``end`` also has its wall-clock ``time``. A record of a kind this
version does not know is skipped by the reader.

**How the checkpoint relates to the journal.** The algorithm's state changes
only in ``propose`` and ``feedback`` calls, and each such call is journaled
next to it with no other algorithm call in between, so the journal is the
exact sequence of algorithm calls. A checkpoint holds ``algorithm.state_dict()``
together with ``position``, the number of journal records it reflects; it is
written at quiescent points (after a journaled call completed), atomically
(temporary file, ``fsync``, ``os.replace``), at most every
``checkpoint_interval`` seconds and at the end of every session. On resume the
checkpoint is loaded and the records after ``position`` are replayed in order:
``propose`` calls ``algorithm.propose()`` again and checks that it returns the
journaled id and tokens (an algorithm is deterministic given its state_dict),
``end`` calls ``algorithm.feedback()`` with the journaled value. A proposal
whose replayed tokens differ is only accepted for a trial that never finished
(it is re-journaled with the new tokens); a finished one raises
:class:`~symbolic_nas.storage.rundir.ResumeError`. Every ``end`` record is a
kept trial (the first one per id; a trial is never run again once it has one),
and every proposal without an ``end`` is run again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from symbolic_nas.space.codec import Codec
from symbolic_nas.storage.rundir import ResumeError
from symbolic_nas.storage.trial import StrEnum, Trial

if TYPE_CHECKING:
    from symbolic_nas.algorithms.base import Algorithm, Proposal

__all__ = [
    "EventKind",
    "History",
    "end_record",
    "event_of",
    "lost_record",
    "propose_record",
    "read_history",
    "replay",
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


_KINDS = {kind.value: kind for kind in EventKind}


# ---------------------------------------------------------------------- writers


def run_record(*, session: int, resumed: bool, num_trials: int) -> dict[str, Any]:
    """The record of a session's start (this process's id and the time included).

    Example:
        >>> record = run_record(session=2, resumed=True, num_trials=50)
        >>> record["event"], record["session"], sorted(record)
        ('run', 2, ['event', 'num_trials', 'pid', 'resumed', 'session', 'time'])
    """
    return {
        "event": EventKind.RUN.value,
        "session": session,
        "resumed": resumed,
        "num_trials": num_trials,
        "time": time.time(),
        "pid": os.getpid(),
    }


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
    if replaces:
        record["replaces"] = True
    return record


def start_record(trial: Trial) -> dict[str, Any]:
    """The record of an attempt handed to a worker: the trial's ``attempts``,
    ``worker`` and ``started`` as set when it was submitted.

    Example:
        >>> start_record(Trial(5, [0], attempts=2, worker="w1", started=10.0))
        {'event': 'start', 'trial': 5, 'attempt': 2, 'worker': 'w1', 'time': 10.0}
    """
    return {
        "event": EventKind.START.value,
        "trial": trial.id,
        "attempt": trial.attempts,
        "worker": trial.worker,
        "time": trial.started,
    }


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


def end_record(trial: Trial, feedback: float | None) -> dict[str, Any]:
    """The record of a finished trial, written right before ``algorithm.feedback()``.

    Args:
        trial: The finished trial (stored whole, see :meth:`Trial.to_record`).
        feedback: What the algorithm is told (None: no learning signal).

    Example:
        >>> record = end_record(Trial(5, [0], status="completed", reward=0.5), 0.5)
        >>> record["event"], record["trial"]["status"], record["feedback"]
        ('end', 'completed', 0.5)
    """
    return {"event": EventKind.END.value, "trial": trial.to_record(), "feedback": feedback}


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
        finished: Finished trials by id (the first ``end`` record of each id).
        proposals: The last ``propose`` record of each trial id.
        attempts: How many times each trial was started.
        sessions: How many sessions (``run`` records) the journal holds.
    """

    def __init__(self) -> None:
        self.finished: dict[int, Trial] = {}
        self.proposals: dict[int, dict[str, Any]] = {}
        self.attempts: dict[int, int] = {}
        self.sessions = 0

    @property
    def unfinished(self) -> list[int]:
        """Ids of proposed trials without an ``end`` record, in id order."""
        return sorted(set(self.proposals) - set(self.finished))


def read_history(records: list[dict[str, Any]], codec: Codec | None = None) -> History:
    """Folds journal records into a :class:`History`.

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
    """
    history = History()
    for record in records:
        event = event_of(record)
        if event is EventKind.RUN:
            history.sessions += 1
        elif event is EventKind.PROPOSE:
            history.proposals[int(record["trial"])] = record
        elif event is EventKind.START:
            trial_id = int(record["trial"])
            history.attempts[trial_id] = history.attempts.get(trial_id, 0) + 1
        elif event is EventKind.END:
            trial = Trial.from_record(record["trial"], codec)
            history.finished.setdefault(trial.id, trial)
    return history


def replay(
    algorithm: Algorithm,
    records: list[dict[str, Any]],
    checkpoint: dict[str, Any] | None,
) -> list[Proposal]:
    """Restores ``algorithm`` (already ``setup``) to its state after ``records``.

    Loads the checkpoint's state_dict (if any), then replays the records after
    its position (see the module docstring).

    Returns:
        Proposals whose replayed tokens differ from the journaled ones (trials
        that never finished); the caller journals them again.

    Raises:
        ResumeError: If replaying contradicts the journal for a finished trial.
    """
    position = 0
    if checkpoint is not None:
        algorithm.load_state_dict(checkpoint["algorithm"])
        position = int(checkpoint["position"])
        if position > len(records):
            raise ResumeError(
                f"the checkpoint is ahead of the journal ({position} > {len(records)} records): "
                "the journal was truncated or replaced"
            )
    later = records[position:]
    ended_later = {int(r["trial"]["id"]) for r in later if event_of(r) is EventKind.END}
    fed: set[int] = set()
    replaced: dict[int, Proposal] = {}
    for record in later:
        event = event_of(record)
        if event is EventKind.PROPOSE:
            trial_id = int(record["trial"])
            tokens = [int(t) for t in record["tokens"]]
            if record.get("replaces"):
                own = algorithm.outstanding_proposal(trial_id)
                if own is None or own.tokens != tokens:
                    raise ResumeError(
                        f"replaying the journal re-proposed trial {trial_id} differently from "
                        "the journal; the algorithm is not deterministic given its state_dict"
                    )
                replaced.pop(trial_id, None)
                continue
            proposal = algorithm.propose()
            if proposal.id != trial_id:
                raise ResumeError(
                    f"replaying the journal gave proposal id {proposal.id} where the journal "
                    f"has trial {trial_id}; the checkpoint does not match the journal"
                )
            if proposal.tokens != tokens:
                if trial_id in ended_later:
                    raise ResumeError(
                        f"replaying the journal after the checkpoint re-proposed finished trial "
                        f"{trial_id} as {proposal.tokens}, but the journal has {tokens}: "
                        f"{type(algorithm).__name__} is not deterministic given its state_dict "
                        "(set checkpoint_interval=0 to checkpoint after every event)"
                    )
                replaced[trial_id] = proposal
        elif event is EventKind.END:
            trial_id = int(record["trial"]["id"])
            if trial_id in fed:
                continue
            own = algorithm.outstanding_proposal(trial_id)
            if own is None:
                continue  # Fed before the checkpoint was taken.
            fed.add(trial_id)
            algorithm.feedback(own, record.get("feedback"))
    return list(replaced.values())
