"""Executors run trials for the tuner: inline, in persistent worker processes, or on Ray.

The driver holds the algorithm and talks to an executor through four calls:
:meth:`Executor.start` (send the evaluation once), :meth:`~Executor.free_slots`,
:meth:`~Executor.submit` (one :class:`~symbolic_nas.tuner.evaluation.Task`) and
:meth:`~Executor.wait` (finished :class:`~symbolic_nas.tuner.evaluation.Outcome`
objects, in finishing order). Executors own time limits and worker deaths;
the tuner owns the failure policy.

* :class:`InlineExecutor` runs one trial at a time in the driver process.
* :class:`ProcessExecutor` keeps persistent ``spawn`` worker processes, one
  torch thread each, pinned round-robin to GPUs with ``CUDA_VISIBLE_DEVICES``.
* ``symbolic_nas.tuner.executors.ray_actors.RayExecutor`` runs reusable Ray actors.
"""

from __future__ import annotations

import abc
import collections
import contextlib
import dataclasses
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

from symbolic_nas.storage.trial import TrialStatus
from symbolic_nas.tuner.evaluation import Evaluation, Outcome, Task, dumps

__all__ = [
    "Executor",
    "InlineExecutor",
    "ProcessExecutor",
    "WorkerError",
    "visible_gpus",
]


class WorkerError(RuntimeError):
    """A worker cannot run trials at all (for example, the evaluation fails to load)."""


class Executor(abc.ABC):
    """Runs tasks for the driver (see the module docstring)."""

    #: How many tasks can run at once.
    slots: int = 1

    @abc.abstractmethod
    def start(self, evaluation: Evaluation) -> None:
        """Sends the evaluation to the workers (once per worker)."""

    @abc.abstractmethod
    def free_slots(self) -> int:
        """How many more tasks can be submitted now."""

    @abc.abstractmethod
    def submit(self, task: Task) -> str:
        """Starts a task; returns the name of the worker it went to."""

    @abc.abstractmethod
    def wait(self, timeout: float | None) -> list[Outcome]:
        """Finished outcomes (possibly none before ``timeout`` seconds pass)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stops the workers (running tasks are abandoned)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class InlineExecutor(Executor):
    """Runs one trial at a time in the driver process (no subprocess).

    The per-trial time limit uses ``SIGALRM``: the evaluation is interrupted by
    an exception at the next Python bytecode after the limit (a single long
    native call, such as one huge convolution, finishes first). It needs the
    main thread of a POSIX process. Torch's thread settings are left as they are.

    Args:
        trial_timeout: Seconds before a trial is failed, or None.

    Example:
        >>> import symbolic_nas as sn
        >>> from symbolic_nas.tuner.evaluation import Evaluation, Task
        >>> executor = InlineExecutor()
        >>> executor.start(Evaluation({"k": sn.oneof([1, 2])}, lambda m: float(m["k"])))
        >>> executor.submit(Task(trial_id=0, tokens=[1]))
        'driver'
        >>> [(o.trial_id, o.reward) for o in executor.wait(None)]
        [(0, 2.0)]
    """

    def __init__(self, *, trial_timeout: float | None = None) -> None:
        self.trial_timeout = trial_timeout
        self._evaluation: Evaluation | None = None
        self._task: Task | None = None

    def start(self, evaluation: Evaluation) -> None:
        if self.trial_timeout is not None and (
            threading.current_thread() is not threading.main_thread()
            or not hasattr(signal, "setitimer")
        ):
            raise ValueError(
                "`trial_timeout` needs the main thread of a POSIX process with the inline "
                "executor (it uses SIGALRM); use executor='process' instead"
            )
        self._evaluation = evaluation

    def free_slots(self) -> int:
        return 0 if self._task is not None else 1

    def submit(self, task: Task) -> str:
        if self._task is not None:
            raise RuntimeError("the inline executor runs one task at a time")
        self._task = task
        return "driver"

    def wait(self, timeout: float | None) -> list[Outcome]:
        del timeout
        if self._task is None or self._evaluation is None:
            return []
        task, self._task = self._task, None
        return [self._evaluation.run(task, timeout=self.trial_timeout)]

    def close(self) -> None:
        self._task = None


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` entries.

    Example:
        >>> isinstance(visible_gpus(), list)
        True
    """
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [item.strip() for item in env.split(",") if item.strip() and item.strip() != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


@dataclasses.dataclass(eq=False)
class _Worker:
    index: int
    process: Any
    conn: multiprocessing.connection.Connection
    ready_time: float | None = None
    task: Task | None = None
    submitted: float = 0.0

    @property
    def name(self) -> str:
        return f"process-{self.index} (pid {self.process.pid})"

    def deadline(self, timeout: float | None) -> float | None:
        if timeout is None or self.task is None or self.ready_time is None:
            return None
        return max(self.submitted, self.ready_time) + timeout


class ProcessExecutor(Executor):
    """Persistent worker processes (``multiprocessing`` spawn), one task each at a time.

    Each worker loads the evaluation once (so data cached by the evaluator, such as
    :class:`~symbolic_nas.training.Trainer`'s, is loaded once per worker), sets
    ``torch.set_num_threads(threads)`` and ignores ``SIGINT`` (the driver stops it).
    Worker ``i`` sees only GPU ``gpus[i % len(gpus)]`` through ``CUDA_VISIBLE_DEVICES``,
    so ``workers > len(gpus)`` packs several small children on each GPU. A worker
    past the time limit is killed and replaced; a worker that dies mid-trial is
    replaced and its trial reported ``TrialStatus.LOST`` (the tuner runs it again). Workers
    exit on their own when the driver dies.

    Args:
        workers: Number of worker processes.
        gpus: ``CUDA_VISIBLE_DEVICES`` entries to pin workers to; None: all the
            GPUs this process sees (none on a CPU-only machine); ``[]``: no GPU.
        threads: Torch intra-op threads per worker.
        trial_timeout: Seconds before a trial is failed and its worker replaced.
    """

    def __init__(
        self,
        *,
        workers: int = 2,
        gpus: Sequence[int | str] | None = None,
        threads: int = 1,
        trial_timeout: float | None = None,
    ) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"`workers` must be an int >= 1, but got {workers!r}")
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"`threads` must be an int >= 1, but got {threads!r}")
        self.slots = workers
        self.gpus = visible_gpus() if gpus is None else [str(g) for g in gpus]
        self.threads = threads
        self.trial_timeout = trial_timeout
        self._context = multiprocessing.get_context("spawn")
        self._payload: bytes | None = None
        self._workers: list[_Worker] = []
        self._startup_failures = 0
        self._pending: collections.deque[Outcome] = collections.deque()

    # ------------------------------------------------------------------ lifecycle

    def start(self, evaluation: Evaluation) -> None:
        self._payload = dumps(evaluation, main_by_reference=True)
        self._workers = [self._spawn(i) for i in range(self.slots)]

    def _environment(self, index: int) -> dict[str, str]:
        env = {"OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads)}
        env["CUDA_VISIBLE_DEVICES"] = self.gpus[index % len(self.gpus)] if self.gpus else ""
        return env

    def _spawn(self, index: int) -> _Worker:
        parent_conn, child_conn = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=_worker_main,
            args=(child_conn, index, self._payload, self.threads),
            name=f"symbolic_nas-worker-{index}",
            daemon=True,
        )
        # A spawned child inherits os.environ at start(): the GPU pinning must be in
        # place before any CUDA call, including imports in the re-imported main module.
        with _environment(self._environment(index)):
            process.start()
        child_conn.close()
        return _Worker(index=index, process=process, conn=parent_conn)

    def close(self) -> None:
        for worker in self._workers:
            with contextlib.suppress(OSError, ValueError):
                worker.conn.send(("stop",))
        deadline = time.monotonic() + 5.0
        for worker in self._workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(5.0)
            worker.conn.close()
        self._workers = []

    # ------------------------------------------------------------------ tasks

    def free_slots(self) -> int:
        return sum(1 for w in self._workers if w.task is None)

    def submit(self, task: Task) -> str:
        worker = next((w for w in self._workers if w.task is None), None)
        if worker is None:
            raise RuntimeError("no free worker: call wait() first")
        worker.task, worker.submitted = task, time.monotonic()
        # If the worker died, wait() sees its sentinel and reports the task lost.
        with contextlib.suppress(OSError):
            worker.conn.send(("run", task))
        return worker.name

    def wait(self, timeout: float | None) -> list[Outcome]:
        if self._pending:
            return self._drain()
        if not any(w.task is not None for w in self._workers):
            return []
        now = time.monotonic()
        limit = None if timeout is None else now + timeout
        deadlines = [d for w in self._workers if (d := w.deadline(self.trial_timeout))]
        if deadlines:
            limit = min(deadlines) if limit is None else min(limit, *deadlines)
        waitables: list[Any] = []
        for w in self._workers:
            waitables += [w.conn, w.process.sentinel]
        wait_for = None if limit is None else max(0.0, limit - now)
        ready = set(multiprocessing.connection.wait(waitables, wait_for))
        for worker in list(self._workers):
            if worker.conn in ready:
                self._receive(worker)
            if worker.process.sentinel in ready and not worker.process.is_alive():
                self._on_death(worker)
        self._check_deadlines()
        return self._drain()

    def _drain(self) -> list[Outcome]:
        outcomes = list(self._pending)
        self._pending.clear()
        return outcomes

    def _receive(self, worker: _Worker) -> None:
        while True:
            try:
                if not worker.conn.poll():
                    return
                message = worker.conn.recv()
            except (EOFError, OSError):
                return  # Dead: its sentinel says so.
            kind = message[0]
            if kind == "ready":
                worker.ready_time = time.monotonic()
                self._startup_failures = 0
            elif kind == "done":
                outcome: Outcome = message[1]
                if worker.task is not None and worker.task.trial_id == outcome.trial_id:
                    outcome.worker = worker.name
                    self._pending.append(outcome)
                    worker.task = None
            elif kind == "fatal":
                self.close()
                raise WorkerError(f"a worker process could not load the evaluation:\n{message[1]}")

    def _on_death(self, worker: _Worker) -> None:
        self._receive(worker)  # A result sent just before dying still counts.
        code = worker.process.exitcode
        if worker.ready_time is None:
            self._startup_failures += 1
            if self._startup_failures > 3:
                self.close()
                raise WorkerError(
                    f"worker processes keep dying while starting (last exit code {code})"
                )
        if worker.task is not None:
            self._pending.append(
                Outcome(
                    worker.task.trial_id,
                    TrialStatus.LOST,
                    error=f"WorkerDied: {worker.name} exited with code {code} mid-trial",
                    worker=worker.name,
                    started=time.time() - (time.monotonic() - worker.submitted),
                    duration=time.monotonic() - worker.submitted,
                )
            )
        self._replace(worker)

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        for worker in list(self._workers):
            deadline = worker.deadline(self.trial_timeout)
            if deadline is None or now < deadline or worker.task is None:
                continue
            worker.process.kill()
            worker.process.join(5.0)
            self._receive(worker)  # It may have finished just in time.
            if worker.task is not None:
                elapsed = now - max(worker.submitted, worker.ready_time or worker.submitted)
                self._pending.append(
                    Outcome(
                        worker.task.trial_id,
                        TrialStatus.FAILED,
                        error=(
                            f"TimeoutError: trial {worker.task.trial_id} ran past its time "
                            f"limit of {self.trial_timeout:g} s; {worker.name} was killed "
                            "and replaced"
                        ),
                        worker=worker.name,
                        started=time.time() - elapsed,
                        duration=elapsed,
                    )
                )
            self._replace(worker)

    def _replace(self, worker: _Worker) -> None:
        worker.conn.close()
        worker.process.join(1.0)
        position = self._workers.index(worker)
        self._workers[position] = self._spawn(worker.index)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _exit_with_parent() -> None:
    """Ends this worker when the driver process dies (even by SIGKILL)."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="symbolic_nas-parent-watch", daemon=True).start()


def _worker_main(
    conn: multiprocessing.connection.Connection, index: int, payload: bytes, threads: int
) -> None:
    """The loop of a worker process: load the evaluation once, then run tasks."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()
    try:
        import cloudpickle
        import torch

        torch.set_num_threads(threads)
        evaluation: Evaluation = cloudpickle.loads(payload)
        evaluation.worker = f"process-{index} (pid {os.getpid()})"
    except BaseException:  # reported to the driver
        with contextlib.suppress(OSError):
            conn.send(("fatal", traceback.format_exc()))
        return
    conn.send(("ready",))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] != "run":
            return
        outcome = evaluation.run(message[1])
        try:
            conn.send(("done", outcome))
        except (OSError, ValueError):
            return
