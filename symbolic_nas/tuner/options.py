"""Validated options of ``sn.search`` and the callback dispatcher it uses."""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from symbolic_nas import algorithms as _algorithms
from symbolic_nas.tuner.callbacks import Callback
from symbolic_nas.tuner.executors.local import Executor

__all__ = ["EXECUTORS", "CallbackList", "SearchOptions"]

EXECUTORS = ("auto", "inline", "process", "ray")


@dataclasses.dataclass
class SearchOptions:
    algorithm: str | _algorithms.Algorithm
    num_trials: int
    workers: int
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

    @classmethod
    def validated(cls, **kw: Any) -> SearchOptions:
        if not isinstance(kw["algorithm"], (str, _algorithms.Algorithm)):
            raise ValueError(
                "`algorithm` must be a registered name or an Algorithm instance, "
                f"but got {kw['algorithm']!r}"
            )
        _check_int("num_trials", kw["num_trials"], 1)
        if not isinstance(kw["executor"], Executor) and kw["executor"] not in EXECUTORS:
            raise ValueError(
                f"`executor` must be one of {EXECUTORS} or an Executor, but got {kw['executor']!r}"
            )
        if kw["workers"] != "auto":
            _check_int("workers", kw["workers"], 1, "'auto' or ")
        if kw["run_dir"] is not None:
            if not isinstance(kw["run_dir"], (str, os.PathLike)) or not os.fspath(kw["run_dir"]):
                raise ValueError(f"`run_dir` must be a path or None, but got {kw['run_dir']!r}")
            kw["run_dir"] = os.fspath(kw["run_dir"])
        for name in ("resume", "tensorboard"):
            if not isinstance(kw[name], bool):
                raise ValueError(f"`{name}` must be a bool, but got {kw[name]!r}")
        if kw["seed"] is not None:
            _check_int("seed", kw["seed"], 0, "None or ")
        reward = kw["failure_reward"]
        if reward is not None and (
            isinstance(reward, bool)
            or not isinstance(reward, numbers.Real)
            or not math.isfinite(reward)
        ):
            raise ValueError(f"`failure_reward` must be None or a finite float, but got {reward!r}")
        kw["failure_reward"] = None if reward is None else float(reward)
        if kw["max_consecutive_failures"] is not None:
            _check_int("max_consecutive_failures", kw["max_consecutive_failures"], 1, "None or ")
        timeout = kw["trial_timeout"]
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or not timeout > 0
        ):
            raise ValueError(f"`trial_timeout` must be None or a number > 0, but got {timeout!r}")
        _check_int("max_retries", kw["max_retries"], 0)
        if kw["gpus"] is not None:
            if isinstance(kw["gpus"], (str, bytes)) or not isinstance(kw["gpus"], Sequence):
                raise ValueError(
                    f"`gpus` must be a list of GPU ids or None, but got {kw['gpus']!r}"
                )
            kw["gpus"] = [str(g) for g in kw["gpus"]]
        per_trial = kw["gpus_per_trial"]
        if isinstance(per_trial, bool) or not isinstance(per_trial, numbers.Real) or per_trial < 0:
            raise ValueError(f"`gpus_per_trial` must be a number >= 0, but got {per_trial!r}")
        _check_int("worker_threads", kw["worker_threads"], 1)
        callbacks = list(kw["callbacks"])
        for callback in callbacks:
            if not isinstance(callback, Callback):
                raise ValueError(
                    f"`callbacks` must hold symbolic_nas Callback objects, but got {callback!r}"
                )
        kw["callbacks"] = callbacks
        if kw["progress"] is None:
            kw["progress"] = bool(getattr(sys.stderr, "isatty", lambda: False)())
        elif not isinstance(kw["progress"], bool):
            raise ValueError(f"`progress` must be a bool or None, but got {kw['progress']!r}")
        interval = kw["checkpoint_interval"]
        if isinstance(interval, bool) or not isinstance(interval, numbers.Real) or interval < 0:
            raise ValueError(f"`checkpoint_interval` must be a number >= 0, but got {interval!r}")
        metadata = kw["metadata"]
        if metadata is not None and not isinstance(metadata, Mapping):
            raise ValueError(f"`metadata` must be a mapping or None, but got {metadata!r}")
        kw["metadata"] = dict(metadata or {})
        return cls(**kw)


def _check_int(name: str, value: Any, minimum: int, prefix: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be {prefix}an int >= {minimum}, but got {value!r}")


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
