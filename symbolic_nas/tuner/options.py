"""Validated options of ``sn.search`` and the callback dispatcher it uses."""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import warnings
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from symbolic_nas import algorithms as _algorithms
from symbolic_nas.tuner import pruners as _pruners
from symbolic_nas.tuner.callbacks import Callback
from symbolic_nas.tuner.evaluators import single_process
from symbolic_nas.tuner.executors.local import Executor, InlineExecutor
from symbolic_nas.tuner.objectives import Objectives, Scalarization
from symbolic_nas.validation import (
    InstanceOf,
    Interval,
    InvalidParameterError,
    Options,
    Satisfies,
    SequenceOf,
    validate_params,
)

__all__ = ["EXECUTORS", "CallbackList", "SearchOptions", "check_single_process"]

EXECUTORS = ("auto", "inline", "process", "ray")


def _is_directions(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(isinstance(k, str) and k and k != "reward" for k in value)
        and all(d in ("max", "min") for d in value.values())
    )


@dataclasses.dataclass
class SearchOptions:
    """The validated keyword options of ``sn.search`` (see there for their meaning)."""

    algorithm: str | _algorithms.Algorithm
    num_trials: int
    workers: int | Literal["auto"]
    executor: str | Executor
    run_dir: str | None
    resume: bool
    seed: int | None
    failure_reward: float | None
    max_consecutive_failures: int | None
    trial_timeout: float | None
    max_retries: int
    gpus: list[str] | None
    gpus_per_trial: float
    worker_threads: int
    callbacks: list[Callback]
    tensorboard: bool
    progress: bool
    checkpoint_interval: float
    metadata: dict[str, Any]
    keep_weights: str | int | None = None
    # Early stopping (issue 11, part 1).
    pruner: _pruners.Pruner | None = None
    pruned_reward: str | float | None = "last"
    #: Several objectives (:mod:`symbolic_nas.tuner.objectives`), or None.
    objectives: Objectives | None = None

    #: The declared constraints of ``sn.search``'s keyword options.
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "algorithm": [
            InstanceOf(str, "a registered name"),
            InstanceOf(_algorithms.Algorithm, "an Algorithm instance"),
        ],
        "num_trials": [Interval(int, 1, None)],
        "workers": [Options(("auto",)), Interval(int, 1, None)],
        "executor": [Options(EXECUTORS), InstanceOf(Executor)],
        "run_dir": ["path", None],
        "resume": ["boolean"],
        "seed": [None, Interval(int, 0, None)],
        "failure_reward": [None, Interval(float, None, None, closed="neither")],
        "max_consecutive_failures": [None, Interval(int, 1, None)],
        "trial_timeout": [None, Interval(float, 0, None, closed="right")],
        "max_retries": [Interval(int, 0, None)],
        "gpus": [
            SequenceOf([Interval(int, 0, None), InstanceOf(str)], description="a list of GPU ids"),
            None,
        ],
        "gpus_per_trial": [Interval(float, 0, None)],
        "worker_threads": [Interval(int, 1, None)],
        "callbacks": [SequenceOf(InstanceOf(Callback))],
        "tensorboard": ["boolean"],
        "progress": ["boolean", None],
        "checkpoint_interval": [Interval(float, 0, None)],
        "metadata": [InstanceOf(Mapping, "a mapping"), None],
        "keep_weights": [None, Options(("best", "all")), Interval(int, 1, None)],
        "pruner": [
            None,
            InstanceOf(str, "a registered pruner name"),
            InstanceOf(_pruners.Pruner, "a Pruner instance"),
        ],
        "pruned_reward": [Options(("last",)), None, Interval(float, None, None, closed="neither")],
        # Several objectives (issue 11): checked here, then built into one Objectives.
        "objectives": [
            None,
            Satisfies(
                _is_directions,
                "a dict of metric names (not 'reward') to 'max' or 'min'",
                invalid=[{}, {"accuracy": "maximise"}, {"reward": "max"}],
            ),
        ],
        "scalarization": [
            None,
            InstanceOf(Scalarization, "sn.MnasNetReward(...) or sn.TuNASReward(...)"),
        ],
        "constraints": [None, InstanceOf(Mapping, "a dict of objective names to bounds")],
        "infeasible_reward": [None, Interval(float, None, None, closed="neither")],
    }

    @classmethod
    def validated(cls, **kw: Any) -> SearchOptions:
        """The options of ``sn.search`` checked and normalised (paths, lists, defaults).

        Raises:
            InvalidParameterError: "`name` must be …, but got …" for the first bad option.
        """
        kw.setdefault("keep_weights", None)
        kw.setdefault("pruner", None)
        kw.setdefault("pruned_reward", "last")
        for key in ("objectives", "scalarization", "constraints", "infeasible_reward"):
            kw.setdefault(key, None)
        validate_params(cls._parameter_constraints, kw)
        kw["objectives"] = _objectives(kw)
        if isinstance(kw["pruner"], str):
            kw["pruner"] = _pruners.get(kw["pruner"])
        if isinstance(kw["pruned_reward"], (int, float)) and not isinstance(
            kw["pruned_reward"], bool
        ):
            kw["pruned_reward"] = float(kw["pruned_reward"])
        if kw["keep_weights"] is not None and kw["run_dir"] is None:
            raise InvalidParameterError(
                "`keep_weights` needs a `run_dir` to keep the weights in, but got "
                f"keep_weights={kw['keep_weights']!r} and run_dir=None"
            )
        if kw["run_dir"] is not None:
            kw["run_dir"] = os.fspath(kw["run_dir"])
        if kw["failure_reward"] is not None:
            kw["failure_reward"] = float(kw["failure_reward"])
        if kw["gpus"] is not None:
            kw["gpus"] = [str(g) for g in kw["gpus"]]
        kw["callbacks"] = list(kw["callbacks"])
        if kw["progress"] is None:
            kw["progress"] = bool(getattr(sys.stderr, "isatty", lambda: False)())
        kw["metadata"] = dict(kw["metadata"] or {})
        problem = _json_problem(kw["metadata"])
        if problem is not None:
            where, what = problem
            raise InvalidParameterError(
                f"`metadata` must be JSON-able (it is stored in the run's config), but "
                f"`metadata{where}` is {what}"
            )
        return cls(**kw)


def _objectives(kw: dict[str, Any]) -> Objectives | None:
    """Takes ``objectives``, ``scalarization``, ``constraints`` and ``infeasible_reward`` out
    of ``kw`` as one validated :class:`Objectives` (None without ``objectives``)."""
    objectives = kw.pop("objectives", None)
    extra = {
        key: kw.pop(key, None) for key in ("scalarization", "constraints", "infeasible_reward")
    }
    if objectives is None:
        given = [key for key, value in extra.items() if value is not None]
        if given:
            raise InvalidParameterError(
                f"`{given[0]}` must be None without `objectives` (the metrics to trade off), "
                f"but got {given[0]}={extra[given[0]]!r} and objectives=None"
            )
        return None
    if extra["infeasible_reward"] is None:
        extra["infeasible_reward"] = 0.0
    return Objectives(objectives, **extra)


def _json_problem(value: Any, path: str = "") -> tuple[str, str] | None:
    """Where (an index path) and why ``value`` is not strict JSON: a dict with str keys,
    list, str, int, finite float, bool or None. None when it is.

    Example:
        >>> _json_problem({"a": [1, 2.5, None]}) is None
        True
        >>> _json_problem({"a": [1, {2}]})
        ("['a'][1]", 'a set ({2})')
    """
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, f"{value!r}, not a finite float")
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            problem = _json_problem(item, f"{path}[{i}]")
            if problem:
                return problem
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return path, f"a dict with a key that is not a str ({key!r})"
            problem = _json_problem(item, f"{path}[{key!r}]")
            if problem:
                return problem
        return None
    text = repr(value)
    return path, f"a {type(value).__name__} ({text if len(text) <= 60 else text[:57] + '...'})"


class CallbackList:
    """Calls hooks in order; a callback that raises is reported and disabled."""

    def __init__(self, callbacks: list[Callback]) -> None:
        self._callbacks = list(callbacks)

    def __call__(self, hook: str, *args: Any) -> None:
        for callback in list(self._callbacks):
            try:
                getattr(callback, hook)(*args)
            except Exception as e:  # observers never stop a search
                self._callbacks.remove(callback)
                warnings.warn(
                    f"callback {type(callback).__name__} raised in {hook}: "
                    f"{type(e).__name__}: {e}; it is disabled for the rest of the run",
                    RuntimeWarning,
                    stacklevel=2,
                )


def check_single_process(evaluate: Any, options: SearchOptions) -> None:
    """An evaluator that must run in the driver (``sn_single_process``: shared weights)
    must get the inline executor.

    Raises:
        ValueError: Naming the rule, if the options run trials elsewhere.
    """
    if not single_process(evaluate):
        return
    executor = options.executor
    inline = (
        isinstance(executor, InlineExecutor)
        if isinstance(executor, Executor)
        else executor == "inline" or (executor == "auto" and options.workers in (1, "auto"))
    )
    if not inline or options.workers not in (1, "auto"):
        raise ValueError(
            f"`workers` must be 1 and `executor` 'inline' or 'auto' with {type(evaluate).__name__}"
            ": shared weights need one process (the driver's, which holds the pool), but got "
            f"workers={options.workers!r}, executor={executor!r}"
        )
