"""A session's run directory: the config a run records, and restoring a resumed run.

A new run writes :func:`run_config` to its directory; a resumed one must match the
config it was started with (the space's fingerprint and the settings of
``_MUST_MATCH``), may change its evaluator (warned about,
:class:`EvaluatorChangedWarning`) and its ``num_trials`` (not below the trials it
finished), and is restored from its journal and checkpoint by :func:`restore`.

Example:
    >>> issubclass(EvaluatorChangedWarning, UserWarning)
    True
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import inspect
import math
import time
import warnings
from typing import Any

from symbolic_nas.algorithms.base import Algorithm
from symbolic_nas.space.codec import Codec
from symbolic_nas.storage.records import propose_record, read_history
from symbolic_nas.storage.resume import replay, settings
from symbolic_nas.storage.rundir import _ADDRESS, ResumeError, Run
from symbolic_nas.storage.trial import Trial
from symbolic_nas.tuner.evaluators import evaluation_kind, input_of
from symbolic_nas.tuner.options import SearchOptions

__all__ = ["EvaluatorChangedWarning", "Restored", "restore", "run_config"]

# Settings a resumed run must share with the run it continues.
_MUST_MATCH = ("algorithm", "seed", "failure_reward", "evaluator_input", "objectives")


class EvaluatorChangedWarning(UserWarning):
    """A run was resumed with another evaluator than the one that scored its trials."""


def run_config(
    codec: Codec, fingerprint: str, algorithm: Algorithm, evaluate: Any, options: SearchOptions
) -> dict[str, Any]:
    """The config a session records about its run (a new run writes it; a resumed one
    is compared with it)."""
    o = options
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "version": _version(),
        "space": {
            "fingerprint": fingerprint,
            "num_decisions": codec.num_decisions,
            "space_size": ("infinite" if math.isinf(codec.space_size) else codec.space_size),
        },
        "algorithm": algorithm.name,
        "seed": o.seed,
        "num_trials": o.num_trials,
        "failure_reward": o.failure_reward,
        "evaluator_input": input_of(evaluate),
        "evaluation": evaluation_kind(evaluate),
        "evaluator": _qualified_name(evaluate),
        "evaluator_settings": _evaluator_settings(evaluate),
        "metadata": o.metadata,
        **({"objectives": o.objectives.to_config()} if o.objectives is not None else {}),
    }


@dataclasses.dataclass
class Restored:
    """What a resumed run's journal restores into a session.

    Attributes:
        sessions: How many sessions the journal holds.
        finished: The finished trials, in finishing order.
        attempts: How many times each trial was started.
        deaths: How many times each trial's worker died.
        rerun_causes: Why each unfinished trial that started starts again.
        queue: The unfinished trials, to run again, in id order.
    """

    sessions: int
    finished: list[Trial]
    attempts: dict[int, int]
    deaths: dict[int, int]
    rerun_causes: dict[int, str]
    queue: list[Trial]


def restore(
    run: Run,
    config: dict[str, Any],
    *,
    codec: Codec,
    fingerprint: str,
    algorithm: Algorithm,
    run_dir: str | None,
) -> Restored:
    """Checks that ``run`` may be resumed with ``config`` and restores ``algorithm``
    (already ``setup``) from its journal and checkpoint.

    Raises:
        ResumeError: If the run is of another space, its config is incompatible,
            ``num_trials`` is below the trials it finished, or the checkpoint or the
            journal contradict the algorithm.
    """
    old = run.read_config()
    if old.get("space", {}).get("fingerprint") != fingerprint:
        raise ResumeError(
            f"`run_dir` {run_dir!r} holds a run of another space (its "
            f"fingerprint is {old.get('space', {}).get('fingerprint')}, this space's is "
            f"{fingerprint}); resume it with the same space, or use a new run_dir"
        )
    differences = [
        f"{key}: {old.get(key)!r} in the run, {config.get(key)!r} now"
        for key in _MUST_MATCH
        if old.get(key) != config.get(key)  # "objectives" is absent without objectives
    ]
    if differences:
        raise ResumeError(
            f"`run_dir` {run_dir!r} holds a run with an incompatible "
            f"configuration ({'; '.join(differences)}); resume it with the same settings, "
            "or use a new run_dir"
        )
    records = run.read_journal()
    history = read_history(records, codec)
    if old.get("run_id") is None:  # Format 1 (before run ids): bind it to one now.
        old = run.bind(old, len(records))
    old = _check_evaluator(run, old, config, run_dir)
    finished = len(history.finished)
    if config["num_trials"] < finished:
        raise ResumeError(
            f"`num_trials` must be at least the {finished} trials `run_dir` "
            f"{run_dir!r} has finished, but got {config['num_trials']} "
            "(the run is left as it is)"
        )
    if old.get("num_trials") != config["num_trials"]:
        run.write_config({**old, "num_trials": config["num_trials"]})
    checkpoint = run.load_checkpoint()
    if checkpoint is not None and checkpoint.get("fingerprint") != fingerprint:
        raise ResumeError("the checkpoint in `run_dir` belongs to another space")
    replaced = replay(algorithm, records, checkpoint, environment=settings(algorithm))
    rerun_causes: dict[int, str] = {}
    for trial_id in history.unfinished:
        cause = history.rerun_cause(trial_id)
        if cause is not None:
            rerun_causes[trial_id] = cause
    for proposal in replaced:
        run.append(propose_record(proposal, replaces=True))
    queue: list[Trial] = []
    unfinished = set(history.unfinished) | {p.id for p in algorithm.outstanding}
    for trial_id in sorted(unfinished):
        pending = algorithm.outstanding_proposal(trial_id)
        if pending is None:
            raise ResumeError(
                f"trial {trial_id} is unfinished in the journal but the restored algorithm "
                "did not propose it; the checkpoint does not match the journal"
            )
        if trial_id not in history.proposals:
            run.append(propose_record(pending))
        queue.append(
            Trial(pending.id, list(pending.tokens), codec=codec, floats=dict(pending.floats))
        )
    return Restored(
        sessions=history.sessions,
        finished=list(history.finished.values()),  # In finishing order.
        attempts=dict(history.attempts),
        deaths=dict(history.deaths),
        rerun_causes=rerun_causes,
        queue=queue,
    )


def _check_evaluator(
    run: Run, old: dict[str, Any], config: dict[str, Any], run_dir: str | None
) -> dict[str, Any]:
    """Resuming with another evaluator is allowed (e.g. to fix a bug in it), but
    warned about: the finished trials keep the rewards the old one gave them.

    The config then records the new evaluator, so the warning is given once.
    """
    keys = [k for k in ("evaluator", "evaluator_settings") if k in old]
    changed = [k for k in keys if old[k] != config[k]]
    if not changed:
        return old
    warnings.warn(
        f"resuming `run_dir` {run_dir!r} with another evaluator: "
        + "; ".join(f"{k} was {old[k]!r}, now {config[k]!r}" for k in changed)
        + ". Its finished trials keep the rewards the old evaluator gave them; use a new "
        "run_dir to compare all trials under the new one",
        EvaluatorChangedWarning,
        stacklevel=2,
    )
    updated = {**old, **{k: config[k] for k in ("evaluator", "evaluator_settings")}}
    run.write_config(updated)
    return updated


def _evaluator_settings(fn: Any) -> str | None:
    """An evaluator object's own ``repr`` (e.g. a ``Trainer``'s hyperparameters), memory
    addresses masked; None for functions and objects without a ``__repr__`` of their own."""
    if inspect.isfunction(fn) or inspect.ismethod(fn) or inspect.isbuiltin(fn):
        return None
    if "__repr__" not in {name for cls in type(fn).__mro__[:-1] for name in vars(cls)}:
        return None  # object's own repr: only the address
    try:
        return _ADDRESS.sub("0x?", repr(fn))
    except Exception:  # a broken __repr__ must not stop a search
        return None


def _qualified_name(fn: Any) -> str:
    target = fn if hasattr(fn, "__qualname__") else type(fn)
    return f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', '?')}"


def _version() -> str:
    try:
        return importlib.metadata.version("symbolic-nas")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
