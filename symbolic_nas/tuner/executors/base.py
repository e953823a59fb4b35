"""The executor interface, and the slot bookkeeping of executors with several workers.

The driver holds the algorithm and talks to an executor through four calls:
:meth:`Executor.start` (send the evaluation once), :meth:`~Executor.free_slots`,
:meth:`~Executor.submit` (one :class:`~symbolic_nas.tuner.evaluation.Task`) and
:meth:`~Executor.wait` (finished :class:`~symbolic_nas.tuner.evaluation.Outcome`
objects, in finishing order). Executors own time limits and worker deaths;
the tuner owns the failure policy.

:class:`SlotExecutor` is what the process and the Ray executors share: a list of
:class:`Slot` objects (one per worker: its task, when the task was submitted,
when the worker became ready), the queue of finished outcomes, the time limit
(an overdue worker is stopped, its trial failed, the worker replaced), lost trials
of workers that died, and workers that die while starting: each is replaced and its
task handed to the replacement (it never began, so no attempt is counted), until
one worker has died ``start_retries`` times in a row while starting.
"""

from __future__ import annotations

import abc
import collections
import dataclasses
import time
from collections.abc import Callable
from typing import ClassVar, Generic, TypeVar

from symbolic_nas.storage.trial import TrialStatus
from symbolic_nas.training.reports import Report
from symbolic_nas.tuner.evaluation import Evaluation, Outcome, Task
from symbolic_nas.validation import Interval, check

__all__ = ["Executor", "Slot", "SlotExecutor", "WorkerError"]

#: How often in a row one worker may die while starting before the executor gives up.
MAX_STARTUP_FAILURES = 3


class WorkerError(RuntimeError):
    """A worker cannot run trials at all (for example, the evaluation fails to load)."""


class Executor(abc.ABC):
    """Runs tasks for the driver (see the module docstring)."""

    #: How many tasks can run at once.
    slots: int = 1
    #: Answers a running trial's report (True: stop the trial); set by the tuner with
    #: :meth:`set_report_handler`. None: reports are not delivered (never stop).
    report_handler: Callable[[Report], bool] | None = None

    def set_report_handler(self, handler: Callable[[Report], bool] | None) -> None:
        """Where the trials' intermediate reports go (the tuner's pruning); call before
        :meth:`start`. An executor that cannot deliver reports ignores them."""
        self.report_handler = handler

    def _answer(self, report: Report, running: Task | None) -> bool:
        """The handler's answer to ``report`` of the task ``running`` on that worker; a
        report of a task the worker no longer runs is told to stop."""
        if running is None or running.trial_id != report.trial_id:
            return True
        return bool(self.report_handler(report)) if self.report_handler is not None else False

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


@dataclasses.dataclass(eq=False, kw_only=True)
class Slot:
    """One worker's place: the task it runs and the times that set its deadline.

    Attributes:
        index: The worker's position (its replacement keeps it).
        ready_time: ``time.monotonic()`` when the worker had loaded the evaluation.
        task: The task it runs, or None when it is free.
        submitted: ``time.monotonic()`` when ``task`` was submitted.

    Example:
        >>> slot = Slot(index=0, ready_time=10.0, task=Task(trial_id=3, tokens=[0]), submitted=12.0)
        >>> slot.name, slot.deadline(5.0), slot.deadline(None)
        ('slot-0', 17.0, None)
    """

    index: int
    ready_time: float | None = None
    task: Task | None = None
    submitted: float = 0.0

    @property
    def name(self) -> str:
        """The worker's name in outcomes and errors."""
        return f"slot-{self.index}"

    def deadline(self, timeout: float | None) -> float | None:
        """When the task runs past ``timeout`` seconds (counted from when both the task
        was submitted and the worker was ready), or None without a limit or a task."""
        if timeout is None or self.task is None or self.ready_time is None:
            return None
        return max(self.submitted, self.ready_time) + timeout


S = TypeVar("S", bound=Slot)


class SlotExecutor(Executor, Generic[S]):
    """An executor whose workers each run one task at a time (see the module docstring).

    Subclasses keep ``self._slots`` (their :class:`Slot` subclass) and implement
    :meth:`_send` (hand a task to a slot's worker), :meth:`_poll` (wait for
    results and deaths, reporting them with :meth:`_ready`, :meth:`_finished`
    and :meth:`_died`) and :meth:`_respawn` (release a
    slot's worker, return a fresh slot in its place); :meth:`_stop` may stop an
    overdue worker before its trial is failed.

    Args:
        trial_timeout: Seconds before a trial is failed and its worker replaced.
        start_retries: How often in a row one worker may die while starting (and be
            replaced) before the executor gives up with :class:`WorkerError`.
    """

    #: What a worker is, in error messages ("worker", "actor").
    worker_noun: ClassVar[str] = "worker"

    def __init__(
        self, *, trial_timeout: float | None = None, start_retries: int = MAX_STARTUP_FAILURES
    ) -> None:
        check("start_retries", start_retries, [Interval(int, 0, None)])
        self.trial_timeout = trial_timeout
        self.start_retries = start_retries
        self._slots: list[S] = []
        self._pending: collections.deque[Outcome] = collections.deque()
        self._startup_failures: dict[int, int] = {}  # Deaths in a row while starting, by index.

    # ------------------------------------------------------------------ the interface

    def free_slots(self) -> int:
        return sum(1 for s in self._slots if s.task is None)

    def submit(self, task: Task) -> str:
        slot = next((s for s in self._slots if s.task is None), None)
        if slot is None:
            raise RuntimeError(f"no free {self.worker_noun}: call wait() first")
        slot.task, slot.submitted = task, time.monotonic()
        self._send(slot, task)
        return slot.name

    def wait(self, timeout: float | None) -> list[Outcome]:
        if self._pending:
            return self._drain()
        if not any(s.task is not None for s in self._slots):
            return []
        self._poll(timeout)
        self._check_deadlines()
        return self._drain()

    # ------------------------------------------------------------------ hooks

    @abc.abstractmethod
    def _send(self, slot: S, task: Task) -> None:
        """Hands ``task`` to the worker of ``slot`` (whose ``task`` is already set)."""

    @abc.abstractmethod
    def _poll(self, timeout: float | None) -> None:
        """Waits at most :meth:`_wait_seconds` for finished tasks and dead workers."""

    @abc.abstractmethod
    def _respawn(self, slot: S) -> S:
        """Releases the worker of ``slot`` and returns a slot with a new worker."""

    def _stop(self, slot: S) -> None:
        """Stops the worker of an overdue ``slot`` (it may still report its task)."""
        del slot

    # ------------------------------------------------------------------ bookkeeping

    def _wait_seconds(self, timeout: float | None) -> float | None:
        """``timeout``, shortened to the first deadline of a running task."""
        now = time.monotonic()
        limit = None if timeout is None else now + timeout
        deadlines = [d for s in self._slots if (d := s.deadline(self.trial_timeout)) is not None]
        if deadlines:
            limit = min(deadlines) if limit is None else min(limit, *deadlines)
        return None if limit is None else max(0.0, limit - now)

    def _ready(self, slot: S) -> None:
        """The worker of ``slot`` has loaded the evaluation."""
        slot.ready_time = time.monotonic()
        self._startup_failures.pop(slot.index, None)

    def _startup_failed(self, slot: S, error: str, cause: BaseException | None = None) -> None:
        """The worker of ``slot`` died while starting; raises :class:`WorkerError` when it
        did so more than ``start_retries`` times in a row (``error`` says how)."""
        deaths = self._startup_failures.get(slot.index, 0) + 1
        self._startup_failures[slot.index] = deaths
        if deaths > self.start_retries:
            self.close()
            raise WorkerError(
                f"{self.worker_noun} {slot.index} died {deaths} times in a row while starting "
                f"({error}); giving up"
            ) from cause

    def _finished(self, slot: S, outcome: Outcome) -> None:
        """Queues the outcome of the task of ``slot`` and frees the slot."""
        outcome.worker = slot.name
        self._pending.append(outcome)
        slot.task = None

    def _died(
        self,
        slot: S,
        *,
        startup_error: str,
        lost_error: str,
        cause: BaseException | None = None,
    ) -> None:
        """The worker of ``slot`` died and a new worker takes its place. If it never got
        ready, that is a startup failure (see :meth:`_startup_failed`, ``startup_error``)
        and its task, which never began, goes to the new worker; otherwise its task is
        lost (``lost_error``)."""
        if slot.ready_time is None:
            self._startup_failed(slot, startup_error, cause)
            task, replacement = slot.task, self._replace(slot)
            if task is not None:
                replacement.task, replacement.submitted = task, time.monotonic()
                self._send(replacement, task)
            return
        if slot.task is not None:
            elapsed = time.monotonic() - slot.submitted
            self._pending.append(
                Outcome(
                    slot.task.trial_id,
                    TrialStatus.LOST,
                    error=lost_error,
                    worker=slot.name,
                    started=time.time() - elapsed,
                    duration=elapsed,
                )
            )
        self._replace(slot)

    def _check_deadlines(self) -> None:
        """Fails the tasks past their time limit and replaces their workers."""
        now = time.monotonic()
        for slot in list(self._slots):
            deadline = slot.deadline(self.trial_timeout)
            if deadline is None or now < deadline:
                continue
            self._stop(slot)
            if slot.task is not None:  # Not finished just in time.
                elapsed = now - max(slot.submitted, slot.ready_time or slot.submitted)
                self._pending.append(
                    Outcome(
                        slot.task.trial_id,
                        TrialStatus.FAILED,
                        error=(
                            f"TimeoutError: trial {slot.task.trial_id} ran past its time "
                            f"limit of {self.trial_timeout:g} s; {slot.name} was killed "
                            "and replaced"
                        ),
                        worker=slot.name,
                        started=time.time() - elapsed,
                        duration=elapsed,
                    )
                )
            self._replace(slot)

    def _replace(self, slot: S) -> S:
        replacement = self._respawn(slot)
        self._slots[self._slots.index(slot)] = replacement
        return replacement

    def _drain(self) -> list[Outcome]:
        outcomes = list(self._pending)
        self._pending.clear()
        return outcomes
