"""Resuming a run: replaying its journal into the algorithm, after its checkpoint.

The journal's records (:mod:`symbolic_nas.storage.records`) are the exact sequence of
the algorithm's calls; :func:`replay` makes them again, and :func:`settings` is what
each session journals so that a replay that diverges can name what changed.

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

import importlib.metadata
import platform
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from symbolic_nas.space.floats import floats_from_json
from symbolic_nas.storage.records import EventKind, event_of
from symbolic_nas.storage.rundir import _ADDRESS, NO_CHECKPOINT_ADVICE, ResumeError

if TYPE_CHECKING:
    from symbolic_nas.algorithms.base import Algorithm, Proposal

__all__ = ["replay", "settings"]


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
            floats = floats_from_json(record.get("floats"))
            if record.get("replaces"):
                own = algorithm.outstanding_proposal(trial_id)
                if own is None or own.tokens != tokens or own.floats != floats:
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
            if proposal.tokens != tokens or proposal.floats != floats:
                if trial_id in ended_later:
                    raise diverged(
                        f"replaying the journal after the checkpoint re-proposed finished trial "
                        f"{trial_id} as {_shown(proposal.tokens, proposal.floats)}, but the "
                        f"journal has {_shown(tokens, floats)}: "
                        + (
                            _BINNED_ADVICE
                            if proposal.floats and not floats
                            else f"{type(algorithm).__name__} is not deterministic given its "
                            "state_dict (set checkpoint_interval=0 to checkpoint after every event)"
                        )
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
            if record.get("objectives") is None or not algorithm.multi_objective:
                algorithm.feedback(own, record.get("feedback"))
            else:
                algorithm.feedback(own, record.get("feedback"), objectives=record["objectives"])
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

_BINNED_ADVICE = (
    "the journal holds no exact float values (the run drew bins: it was made by an earlier "
    "version or with unbinned_floats=False), so resume it with unbinned_floats=False"
)


def _shown(tokens: list[int], floats: dict[int, float]) -> str:
    """Tokens, and exact float values when there are some, for an error message.

    Example:
        >>> _shown([1, 0], {}), _shown([2], {0: 0.25})
        ('[1, 0]', '[2] with floats {0: 0.25}')
    """
    return f"{tokens} with floats {floats}" if floats else str(tokens)


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
