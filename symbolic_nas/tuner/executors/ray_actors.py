"""The Ray executor: trials on reusable Ray actors, the algorithm stays in the driver.

Install with ``pip install 'symbolic-nas[ray]'``. Connect to a cluster before
searching (``ray start --head`` on the head node, ``ray start --address=HEAD:6379``
on the others, then ``ray.init(address="auto")`` in the driver); without a
connection, a local Ray instance is started for the search and shut down after it.
"""

from __future__ import annotations

import dataclasses
import importlib
import threading
import time
from typing import Any

from symbolic_nas.training.reports import Report
from symbolic_nas.tuner.evaluation import Evaluation, Outcome, Task, dumps
from symbolic_nas.tuner.executors.base import Slot, SlotExecutor, WorkerError

__all__ = ["RayExecutor"]

#: Seconds between the driver's looks for reports while it waits for results.
_REPORT_POLL = 0.05


def _ray() -> Any:
    """Ray, imported on first use (it is an optional dependency)."""
    try:
        return importlib.import_module("ray")
    except ImportError as e:
        raise ImportError(f"executor='ray' needs Ray: pip install 'symbolic-nas[ray]' ({e})") from e


class _Reports:
    """A threaded Ray actor between the actors' reports and the driver's answers.

    An actor's ``report`` call waits (on one of this actor's threads) until the
    driver, which collects pending reports with ``take`` while it waits for results,
    gives its answer with ``answer``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 0
        self._pending: dict[int, Report] = {}
        self._events: dict[int, threading.Event] = {}
        self._answers: dict[int, bool] = {}

    def report(self, report: Report) -> bool:
        with self._lock:
            request, self._next = self._next, self._next + 1
            self._pending[request] = report
            event = self._events[request] = threading.Event()
        event.wait()
        with self._lock:
            return self._answers.pop(request)

    def take(self) -> list[tuple[int, Report]]:
        with self._lock:
            items = list(self._pending.items())
            self._pending.clear()
            return items

    def answer(self, request: int, decision: bool) -> None:
        with self._lock:
            self._answers[request] = decision
            event = self._events.pop(request, None)
        if event is not None:
            event.set()


class _Actor:
    """Holds one loaded evaluation and runs tasks on it."""

    def __init__(self, payload: bytes, threads: int, name: str, reports: Any = None) -> None:
        import cloudpickle
        import torch

        torch.set_num_threads(threads)
        self.evaluation: Evaluation = cloudpickle.loads(payload)
        self.evaluation.worker = name
        if reports is not None:
            ray = _ray()
            self.evaluation.reporter = lambda r: bool(ray.get(reports.report.remote(r)))

    def ready(self) -> bool:
        return True

    def run(self, task: Task) -> Outcome:
        return self.evaluation.run(task)


@dataclasses.dataclass(eq=False, kw_only=True)
class _Slot(Slot):
    actor: Any = None
    ready_ref: Any = None
    ref: Any = None
    generation: int = 0

    @property
    def name(self) -> str:
        return f"ray-{self.index}.{self.generation}"


class RayExecutor(SlotExecutor[_Slot]):
    """Runs tasks on ``workers`` reusable Ray actors (see the module docstring).

    Each actor loads the evaluation once and asks Ray for one CPU and
    ``gpus_per_trial`` GPUs. An actor past the time limit is killed and replaced;
    an actor that dies mid-trial is replaced and its trial reported ``TrialStatus.LOST``.
    An actor that dies while starting is replaced and its task handed on, up to
    ``start_retries`` times in a row; one whose ``__init__`` raised (the evaluation
    cannot load) stops the search with
    :class:`~symbolic_nas.tuner.executors.base.WorkerError` at once.

    Args:
        workers: Number of actors, or ``"auto"`` (the cluster's CPUs, or its GPUs
            divided by ``gpus_per_trial``).
        gpus_per_trial: GPUs per actor (fractions pack several on one GPU).
        threads: Torch threads per actor.
        trial_timeout: Seconds before a trial is failed, or None.
        start_retries: How often in a row one actor may die while starting.
    """

    worker_noun = "actor"

    def __init__(
        self,
        *,
        workers: int | str = 2,
        gpus_per_trial: float = 0.0,
        threads: int = 1,
        trial_timeout: float | None = None,
        start_retries: int = 3,
    ) -> None:
        super().__init__(trial_timeout=trial_timeout, start_retries=start_retries)
        self._workers = workers
        self.gpus_per_trial = float(gpus_per_trial)
        self.threads = threads
        self._payload: Any = None
        self._remote: Any = None
        self._reports: Any = None
        self._started_ray = False

    def start(self, evaluation: Evaluation) -> None:
        ray = _ray()
        if not ray.is_initialized():
            ray.init()
            self._started_ray = True
        if self._workers == "auto":
            resources = ray.cluster_resources()
            if self.gpus_per_trial > 0:
                self.slots = max(1, int(resources.get("GPU", 0) / self.gpus_per_trial))
            else:
                self.slots = max(1, int(resources.get("CPU", 1)))
        else:
            self.slots = int(self._workers)
        self._remote = ray.remote(_Actor)
        self._reports = (
            ray.remote(_Reports).options(num_cpus=0, max_concurrency=1000).remote()
            if self.report_handler is not None
            else None
        )
        self._payload = ray.put(dumps(evaluation, main_by_reference=False))
        self._slots = [self._new_slot(i, 0) for i in range(self.slots)]

    def _new_slot(self, index: int, generation: int) -> _Slot:
        remote = self._remote.options(num_cpus=1, num_gpus=self.gpus_per_trial, max_restarts=0)
        slot = _Slot(index=index, actor=None, ready_ref=None, generation=generation)
        slot.actor = remote.remote(self._payload, self.threads, slot.name, self._reports)
        slot.ready_ref = slot.actor.ready.remote()
        return slot

    def _send(self, slot: _Slot, task: Task) -> None:
        slot.ref = slot.actor.run.remote(task)

    def _poll(self, timeout: float | None) -> None:
        ray = _ray()
        self._check_ready()  # A ready actor's running task has a deadline.
        running = [s for s in self._slots if s.task is not None]
        refs = [s.ref for s in running]
        done = self._wait_serving_reports(refs, self._wait_seconds(timeout))
        if done:
            done, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        # An actor answers `ready` before it runs a task: checked first, a dead actor
        # that never got ready counts as a startup failure.
        self._check_ready()
        finished = set(done)
        for slot in running:
            if slot.ref in finished and slot in self._slots:  # (not replaced just now)
                self._collect(slot)

    def _wait_serving_reports(self, refs: list[Any], seconds: float | None) -> list[Any]:
        """``ray.wait`` for the first finished task, answering reports meanwhile."""
        ray = _ray()
        if self._reports is None:
            done, _ = ray.wait(refs, num_returns=1, timeout=seconds)
            return list(done)
        deadline = None if seconds is None else time.monotonic() + seconds
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            step = _REPORT_POLL if left is None else min(_REPORT_POLL, left)
            done, _ = ray.wait(refs, num_returns=1, timeout=step)
            self._serve_reports()
            if done or (deadline is not None and time.monotonic() >= deadline):
                return list(done)

    def _serve_reports(self) -> None:
        ray = _ray()
        running = {s.task.trial_id: s.task for s in self._slots if s.task is not None}
        for request, report in ray.get(self._reports.take.remote()):
            decision = self._answer(report, running.get(report.trial_id))
            self._reports.answer.remote(request, decision)

    def _check_ready(self) -> None:
        ray = _ray()
        pending = [s for s in self._slots if s.ready_time is None]
        if not pending:
            return
        done, _ = ray.wait([s.ready_ref for s in pending], num_returns=len(pending), timeout=0)
        done_set = set(done)
        for slot in pending:
            if slot.ready_ref in done_set:
                try:
                    ray.get(slot.ready_ref)
                except ray.exceptions.RayError as e:
                    self._actor_died(slot, e)
                    continue
                self._ready(slot)

    def _collect(self, slot: _Slot) -> None:
        ray = _ray()
        try:
            outcome: Outcome = ray.get(slot.ref)
        except ray.exceptions.RayError as e:
            self._actor_died(slot, e)
            return
        self._finished(slot, outcome)
        slot.ref = None

    def _actor_died(self, slot: _Slot, error: BaseException) -> None:
        if getattr(error, "actor_init_failed", False):  # Its __init__ raised: it never will load.
            self.close()
            raise WorkerError(f"Ray actors cannot load the evaluation: {error}") from error
        self._died(
            slot,
            startup_error=f"Ray actors cannot load the evaluation: {error}",
            lost_error=f"WorkerDied: {slot.name} died mid-trial ({type(error).__name__})",
            cause=error,
        )

    def _respawn(self, slot: _Slot) -> _Slot:
        _ray().kill(slot.actor, no_restart=True)
        return self._new_slot(slot.index, slot.generation + 1)

    def close(self) -> None:
        ray = _ray()
        for slot in self._slots:
            ray.kill(slot.actor, no_restart=True)
        self._slots = []
        if self._reports is not None:
            ray.kill(self._reports, no_restart=True)
            self._reports = None
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False
