"""Executors run trials: inline, in persistent worker processes, or on Ray actors.

:class:`~symbolic_nas.tuner.executors.ray_actors.RayExecutor` lives in
:mod:`symbolic_nas.tuner.executors.ray_actors` and imports Ray only when started.
"""

from symbolic_nas.tuner.executors.local import (
    Executor,
    InlineExecutor,
    ProcessExecutor,
    WorkerError,
    visible_gpus,
)

__all__ = ["Executor", "InlineExecutor", "ProcessExecutor", "WorkerError", "visible_gpus"]
