"""Which executor runs a search's trials, read from its options.

``executor="auto"`` runs one worker inline (in the driver) and several in worker
processes; ``workers="auto"`` is one process per visible GPU, else one per CPU the
driver may use. An :class:`~symbolic_nas.tuner.executors.local.Executor` instance
is used as given.
"""

from __future__ import annotations

import os

from symbolic_nas.tuner.executors.local import (
    Executor,
    InlineExecutor,
    ProcessExecutor,
    visible_gpus,
)
from symbolic_nas.tuner.options import SearchOptions

__all__ = ["make_executor", "spawns_workers"]


def make_executor(options: SearchOptions) -> Executor:
    """The executor ``options`` ask for (not started yet).

    Raises:
        ValueError: ``workers`` other than 1 with ``executor="inline"``.

    Example:
        >>> from types import SimpleNamespace  # the fields of SearchOptions it reads
        >>> options = SimpleNamespace(executor="auto", workers=1, trial_timeout=None)
        >>> type(make_executor(options)).__name__
        'InlineExecutor'
    """
    kind = options.executor
    if isinstance(kind, Executor):
        return kind
    if kind == "auto":
        kind = "inline" if options.workers == 1 else "process"
    if kind == "inline":
        if options.workers not in (1, "auto"):
            raise ValueError(
                f"`workers` must be 1 with executor='inline', but got {options.workers!r}"
            )
        return InlineExecutor(trial_timeout=options.trial_timeout)
    if kind == "process":
        gpus = visible_gpus() if options.gpus is None else options.gpus
        workers = options.workers if options.workers != "auto" else (len(gpus) or _cpu_count())
        return ProcessExecutor(
            workers=workers,
            gpus=gpus,
            threads=options.worker_threads,
            trial_timeout=options.trial_timeout,
        )
    from symbolic_nas.tuner.executors.ray_actors import RayExecutor

    return RayExecutor(
        workers=options.workers,
        gpus_per_trial=options.gpus_per_trial,
        threads=options.worker_threads,
        trial_timeout=options.trial_timeout,
    )


def spawns_workers(options: SearchOptions) -> bool:
    """Whether the search runs trials in ``spawn`` worker processes (which import the main
    script again).

    Example:
        >>> from types import SimpleNamespace  # the fields of SearchOptions it reads
        >>> spawns_workers(SimpleNamespace(executor="auto", workers=4))
        True
        >>> spawns_workers(SimpleNamespace(executor="inline", workers=1))
        False
    """
    if isinstance(options.executor, Executor):
        return isinstance(options.executor, ProcessExecutor)
    return options.executor == "process" or (options.executor == "auto" and options.workers != 1)


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
