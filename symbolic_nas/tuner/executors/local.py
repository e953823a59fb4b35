"""Executors run trials for the tuner: inline, in persistent worker processes, or on Ray.

The interface (:class:`Executor`) and the slot bookkeeping that the process and the
Ray executors share live in :mod:`symbolic_nas.tuner.executors.base`.

* :class:`InlineExecutor` runs one trial at a time in the driver process.
* :class:`ProcessExecutor` keeps persistent ``spawn`` worker processes, one
  torch thread each, pinned round-robin to GPUs with ``CUDA_VISIBLE_DEVICES``.
* ``symbolic_nas.tuner.executors.ray_actors.RayExecutor`` runs reusable Ray actors.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from symbolic_nas.processes import exit_with_parent
from symbolic_nas.storage.trial import TrialStatus
from symbolic_nas.training.reports import Report
from symbolic_nas.tuner.evaluation import Evaluation, Outcome, Task, describe_error
from symbolic_nas.tuner.executors.base import Executor, Slot, SlotExecutor, WorkerError
from symbolic_nas.tuner.pickling import dumps

__all__ = [
    "Executor",
    "InlineExecutor",
    "ProcessExecutor",
    "WorkerError",
    "visible_gpus",
]


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
        evaluation = self._evaluation
        evaluation.reporter = lambda report: self._answer(report, task)
        try:
            return [evaluation.run(task, timeout=self.trial_timeout)]
        finally:
            evaluation.reporter = None

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


@dataclasses.dataclass(eq=False, kw_only=True)
class _Worker(Slot):
    process: Any
    conn: multiprocessing.connection.Connection
    last_words: str | None = None  # The last error it sent before dying.

    @property
    def name(self) -> str:
        return f"process-{self.index} (pid {self.process.pid})"


class ProcessExecutor(SlotExecutor[_Worker]):
    """Persistent worker processes (``multiprocessing`` spawn), one task each at a time.

    Each worker loads the evaluation once (so data cached by the evaluator, such as
    :class:`~symbolic_nas.training.Trainer`'s, is loaded once per worker), sets
    ``torch.set_num_threads(threads)`` and ignores ``SIGINT`` (the driver stops it).
    Worker ``i`` sees only GPU ``gpus[i % len(gpus)]`` through ``CUDA_VISIBLE_DEVICES``,
    so ``workers > len(gpus)`` packs several small children on each GPU. A worker
    past the time limit is killed and replaced; a worker that dies mid-trial is
    replaced and its trial reported ``TrialStatus.LOST`` (the tuner runs it again), with
    the last error it could send, if any. A worker that dies while starting is replaced
    and its task handed on, up to ``start_retries`` times in a row (see
    :class:`~symbolic_nas.tuner.executors.base.SlotExecutor`). Workers exit on their own
    when the driver dies.

    Args:
        workers: Number of worker processes.
        gpus: ``CUDA_VISIBLE_DEVICES`` entries to pin workers to; None: all the
            GPUs this process sees (none on a CPU-only machine); ``[]``: no GPU.
        threads: Torch intra-op threads per worker.
        trial_timeout: Seconds before a trial is failed and its worker replaced.
        start_retries: How often in a row one worker may die while starting.
    """

    def __init__(
        self,
        *,
        workers: int = 2,
        gpus: Sequence[int | str] | None = None,
        threads: int = 1,
        trial_timeout: float | None = None,
        start_retries: int = 3,
    ) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"`workers` must be an int >= 1, but got {workers!r}")
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"`threads` must be an int >= 1, but got {threads!r}")
        super().__init__(trial_timeout=trial_timeout, start_retries=start_retries)
        self.slots = workers
        self.gpus = visible_gpus() if gpus is None else [str(g) for g in gpus]
        self.threads = threads
        self._context = multiprocessing.get_context("spawn")
        self._payload: bytes | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self, evaluation: Evaluation) -> None:
        self._payload = dumps(evaluation, main_by_reference=True)
        self._slots = [self._spawn(i) for i in range(self.slots)]

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

    def _respawn(self, slot: _Worker) -> _Worker:
        slot.conn.close()
        slot.process.join(1.0)
        return self._spawn(slot.index)

    def close(self) -> None:
        for worker in self._slots:
            with contextlib.suppress(OSError, ValueError):
                worker.conn.send(("stop",))
        deadline = time.monotonic() + 5.0
        for worker in self._slots:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(5.0)
            worker.conn.close()
        self._slots = []

    # ------------------------------------------------------------------ tasks

    def _send(self, slot: _Worker, task: Task) -> None:
        # If the worker died, wait() sees its sentinel and reports the task lost.
        with contextlib.suppress(OSError):
            slot.conn.send(("run", task))

    def _poll(self, timeout: float | None) -> None:
        waitables: list[Any] = []
        for w in self._slots:
            waitables += [w.conn, w.process.sentinel]
        ready = set(multiprocessing.connection.wait(waitables, self._wait_seconds(timeout)))
        for worker in list(self._slots):
            if worker.conn in ready:
                self._receive(worker)
            if worker.process.sentinel in ready and not worker.process.is_alive():
                self._on_death(worker)

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
                self._ready(worker)
            elif kind == "done":
                outcome: Outcome = message[1]
                if worker.task is not None and worker.task.trial_id == outcome.trial_id:
                    self._finished(worker, outcome)
            elif kind == "report":  # The worker waits for the answer.
                decision = self._answer(message[1], worker.task)
                with contextlib.suppress(OSError, ValueError):
                    worker.conn.send(("decision", decision))
            elif kind == "died":
                worker.last_words = message[1]
            elif kind == "fatal":
                self.close()
                raise WorkerError(f"a worker process could not load the evaluation:\n{message[1]}")

    def _on_death(self, worker: _Worker) -> None:
        self._receive(worker)  # A result sent just before dying still counts.
        code = worker.process.exitcode
        lost = f"WorkerDied: {worker.name} exited with code {code} mid-trial"
        if _signal_name(code):
            lost += f" (killed by {_signal_name(code)})"
        if worker.last_words:
            lost += f"; its last error: {worker.last_words}"
        self._died(worker, startup_error=f"last exit code {code}", lost_error=lost)

    def _stop(self, slot: _Worker) -> None:
        slot.process.kill()
        slot.process.join(5.0)
        self._receive(slot)  # It may have finished just in time.


def _signal_name(code: int | None) -> str | None:
    """The name of the signal that ended a process with exit code ``code``, if one did."""
    if code is None or code >= 0:
        return None
    try:
        return signal.Signals(-code).name
    except ValueError:
        return None


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


def _pipe_reporter(conn: multiprocessing.connection.Connection) -> Callable[[Report], bool]:
    """Sends a report to the driver through the worker's pipe and waits for its answer."""

    def send(report: Report) -> bool:
        conn.send(("report", report))
        message = conn.recv()
        if message[0] != "decision":  # The driver is stopping this worker.
            os._exit(0)
        return bool(message[1])

    return send


def _worker_main(
    conn: multiprocessing.connection.Connection, index: int, payload: bytes, threads: int
) -> None:
    """The loop of a worker process: load the evaluation once, then run tasks."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent()
    try:
        import cloudpickle
        import torch

        torch.set_num_threads(threads)
        evaluation: Evaluation = cloudpickle.loads(payload)
        evaluation.worker = f"process-{index} (pid {os.getpid()})"
        evaluation.reporter = _pipe_reporter(conn)
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
        task: Task = message[1]
        try:
            outcome = evaluation.run(task)
        except BaseException as e:  # Tell the driver why this worker dies, then die.
            with contextlib.suppress(Exception):
                conn.send(("died", describe_error(e)))
            raise
        try:
            conn.send(("done", outcome))
        except (OSError, ValueError):
            return
        except Exception as e:  # The outcome cannot be pickled: report that instead.
            failed = Outcome(
                task.trial_id,
                TrialStatus.FAILED,
                error=f"the outcome could not be sent to the driver: {describe_error(e)}",
                started=outcome.started,
                duration=outcome.duration,
                worker=outcome.worker,
            )
            try:
                conn.send(("done", failed))
            except Exception:  # The pipe is broken: the driver sees this worker die.
                return
