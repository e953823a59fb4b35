"""Journal records: their kinds, how each is written and how a journal is read back.

A run's journal (``journal.jsonl`` in the run directory, see
:mod:`symbolic_nas.storage.rundir`) holds one plain JSON record per event, never
pickle. Every record carries an ``event`` key whose value is an :class:`EventKind`;
the writer of each kind below is its schema, and :func:`read_history` and
:func:`replay` are its reader. :class:`~symbolic_nas.storage.rundir.Run` adds the
run's id (``run_id``) to every record it appends.

* ``run`` (:func:`run_record`): a session starts (``session``, ``resumed``,
  ``num_trials``, ``time``, ``pid``, and ``settings``: see :func:`settings`).
* ``propose`` (:func:`propose_record`): the algorithm proposed trial ``trial``
  with ``tokens`` (plus its ``version`` and ``meta``). Written right after
  ``algorithm.propose()``; ``replaces`` marks a re-journaled proposal.
* ``start`` (:func:`start_record`): attempt ``attempt`` of trial ``trial`` was
  handed to ``worker``; a re-run says why in ``cause``: ``"worker_died"`` (after a
  ``lost`` record) or ``"driver_stopped"`` (the driver stopped or died while the
  trial ran). Only worker deaths count against ``max_retries``.
* ``lost`` (:func:`lost_record`): the worker running trial ``trial`` died; the
  trial is run again.
* ``end`` (:func:`end_record`): trial ``trial`` (a full
  :meth:`~symbolic_nas.storage.trial.Trial.to_record`) finished, and ``feedback``
  (a float or None) is what the algorithm is told; ``labels`` (when the trial
  knows its codec) maps each active decision's name to its choice's label. Written right before
  ``algorithm.feedback()``.
* ``stop`` (:func:`stop_record`): a session ended (``reason``).

Every record but ``end`` also has its wall-clock ``time``. A record of a kind this
version does not know is skipped by the reader; one of a known kind whose fields
have the wrong types is refused, naming the file and line
(:mod:`symbolic_nas.storage.record_shapes`).

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
:class:`~symbolic_nas.storage.rundir.ResumeError`, which names the settings that
changed since the session that journaled it. Every ``end`` record is a kept trial
(a trial never runs again once it has one; a second ``end`` of a trial, or one with
other tokens than its proposal, is corruption), and every proposal without an
``end`` is run again.

**The budget.** A run keeps the budget (``num_trials``) its first session set the
algorithm up with: a checkpoint restores it (``state_dict`` holds it), and replay
without a checkpoint sets the algorithm up with the budget the sessions journaled
(:func:`settings`), so a run whose ``num_trials`` changed between sessions replays
exactly (the automatic learning rate of ``reinforce`` and ``ppo`` depends on it).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from symbolic_nas.space.codec import Codec
from symbolic_nas.storage.rundir import _ADDRESS, NO_CHECKPOINT_ADVICE, ResumeError
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
    "settings",
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
        settings: How it runs (:func:`settings`), compared when replay diverges.

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


def end_record(trial: Trial, feedback: float | None) -> dict[str, Any]:
    """The record of a finished trial, written right before ``algorithm.feedback()``.

    Args:
        trial: The finished trial (stored whole, see :meth:`Trial.to_record`).
        feedback: What the algorithm is told (None: no learning signal).

    Example:
        >>> record = end_record(Trial(5, [0], status="completed", reward=0.5), 0.5)
        >>> record["event"], record["trial"]["status"], record["feedback"]
        ('end', 'completed', 0.5)
        >>> import symbolic_nas as sn
        >>> codec = sn.encode({"act": sn.oneof({"relu": "r", "gelu": "g"})})
        >>> end_record(Trial(5, [1], codec=codec), None)["labels"]
        {'act': 'gelu'}
    """
    record = {"event": EventKind.END.value, "trial": trial.to_record(), "feedback": feedback}
    if trial.codec is not None:
        with contextlib.suppress(ValueError):  # invalid tokens: the trial's error says so
            record["labels"] = trial.codec.labels(trial.tokens)
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


def replay(
    algorithm: Algorithm,
    records: list[dict[str, Any]],
    checkpoint: dict[str, Any] | None,
    *,
    environment: Mapping[str, Any] | None = None,
) -> list[Proposal]:
    """Restores ``algorithm`` (already ``setup``) to its state after ``records``.

    Loads the checkpoint's state_dict (if any), then replays the records after
    its position (see the module docstring). Without a checkpoint, the algorithm is
    set up again with the budget the journal's sessions ran with.

    Args:
        algorithm: The algorithm, set up with the run's codec.
        records: The journal.
        checkpoint: The checkpoint (:meth:`Run.load_checkpoint`), or None.
        environment: Today's settings (``algorithm``, versions...) to compare with
            those the sessions journaled, when replay diverges (see :func:`settings`).

    Returns:
        Proposals whose replayed tokens differ from the journaled ones (trials
        that never finished); the caller journals them again.

    Raises:
        ResumeError: If replaying contradicts the journal for a finished trial.
    """
    position = 0
    if checkpoint is not None:
        state = checkpoint["algorithm"]
        if isinstance(state, Mapping) and state.get("seed") != algorithm.seed:
            raise ResumeError(
                f"the checkpoint is of an algorithm seeded {state.get('seed')!r}, but this "
                f"run's algorithm is seeded {algorithm.seed!r}: it belongs to another run; "
                "delete it (the journal alone restores the run)"
            )
        try:
            algorithm.load_state_dict(state)
        except Exception as e:  # a state the algorithm cannot take is an unusable checkpoint
            raise ResumeError(
                f"the checkpoint's algorithm state cannot be loaded ({type(e).__name__}: {e}); "
                f"{NO_CHECKPOINT_ADVICE}"
            ) from None
        position = int(checkpoint["position"])
        if position > len(records):
            raise ResumeError(
                f"the checkpoint is ahead of the journal ({position} > {len(records)} records): "
                "the journal was truncated or replaced"
            )
    else:
        budget = _journaled_budget(records)
        if budget is not _UNKNOWN and budget != algorithm.budget:
            algorithm.setup(algorithm.codec, budget=budget)
    session = next((r for r in reversed(records[:position]) if event_of(r) is EventKind.RUN), None)
    today = {"budget": algorithm.budget, **(environment or {})}

    def diverged(message: str) -> ResumeError:
        return ResumeError(message + _what_changed(session, today))

    later = records[position:]
    ended_later = {int(r["trial"]["id"]) for r in later if event_of(r) is EventKind.END}
    fed: set[int] = set()
    replaced: dict[int, Proposal] = {}
    for record in later:
        event = event_of(record)
        if event is EventKind.RUN:
            session = record
        elif event is EventKind.PROPOSE:
            trial_id = int(record["trial"])
            tokens = [int(t) for t in record["tokens"]]
            if record.get("replaces"):
                own = algorithm.outstanding_proposal(trial_id)
                if own is None or own.tokens != tokens:
                    raise diverged(
                        f"replaying the journal re-proposed trial {trial_id} differently from "
                        "the journal; the algorithm is not deterministic given its state_dict"
                    )
                replaced.pop(trial_id, None)
                continue
            proposal = algorithm.propose()
            if proposal.id != trial_id:
                raise diverged(
                    f"replaying the journal gave proposal id {proposal.id} where the journal "
                    f"has trial {trial_id}; the checkpoint does not match the journal"
                )
            if proposal.tokens != tokens:
                if trial_id in ended_later:
                    raise diverged(
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


def settings(algorithm: Algorithm, num_trials: int | None = None) -> dict[str, Any]:
    """What a session journals about how it ran (its ``run`` record's ``settings``).

    With ``num_trials`` None, only what replay compares when it diverges: the
    algorithm's ``repr`` (addresses masked) and the ``symbolic_nas``, ``torch`` and
    ``python`` versions; else also ``num_trials`` and the algorithm's ``budget``.

    Example:
        >>> from symbolic_nas import algorithms
        >>> sorted(settings(algorithms.get("random")))
        ['algorithm', 'python', 'symbolic_nas', 'torch']
    """
    try:
        version = importlib.metadata.version("symbolic-nas")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    out: dict[str, Any] = (
        {}
        if num_trials is None
        else {
            "num_trials": num_trials,
            "budget": algorithm.budget,
        }
    )
    out.update(
        {
            "algorithm": _ADDRESS.sub("0x?", repr(algorithm)),
            "symbolic_nas": version,
            "torch": torch.__version__,
            "python": platform.python_version(),
        }
    )
    return out


_UNKNOWN = object()


def _journaled_budget(records: list[dict[str, Any]]) -> Any:
    """The budget the journal's sessions ran with: the last one a session journaled (a
    run keeps its budget, see the module docstring), else for journals of older
    versions the first session's ``num_trials``."""
    runs = [r for r in records if event_of(r) is EventKind.RUN]
    for record in reversed(runs):
        if isinstance(record.get("settings"), Mapping) and "budget" in record["settings"]:
            return record["settings"]["budget"]
    if runs and isinstance(runs[0].get("num_trials"), int):
        return runs[0]["num_trials"]
    return _UNKNOWN


def _what_changed(session: Mapping[str, Any] | None, today: Mapping[str, Any]) -> str:
    """Which settings differ between the session that journaled a record and today."""
    number = session.get("session", "?") if session is not None else "?"
    recorded = session.get("settings") if session is not None else None
    if not isinstance(recorded, Mapping):
        return f" (session {number} journaled no settings to compare with today's)"
    changed = [
        f"{key}: {recorded[key]!r} in session {number}, {value!r} now"
        for key, value in today.items()
        if key in recorded and recorded[key] != value
    ]
    if changed:
        return f" (settings that changed since session {number}: {'; '.join(changed)})"
    return f" (none of the settings session {number} journaled changed: {', '.join(today)})"
