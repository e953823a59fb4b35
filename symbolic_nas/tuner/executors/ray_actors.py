"""The Ray executor: trials on reusable Ray actors, the algorithm stays in the driver.

Install with ``pip install 'symbolic-nas[ray]'``. Connect to a cluster before
searching (``ray.init(address="HEAD:6379")``, or :func:`connect`, or pass ``address``;
the README's "Distributed" section has the cluster steps, token authentication
included); without a connection, a local Ray instance is started for the search and
shut down after it.

Actors that the cluster cannot place (more workers than its live nodes hold, counting
one CPU and ``gpus_per_trial`` GPUs each, say the replacement of an actor whose node was
lost) are given up after ``placement_timeout`` seconds, with a warning, and the search
goes on with fewer actors; the task such an actor held (it never began) runs on the next
free live actor.
"""

from __future__ import annotations

import collections
import dataclasses
import importlib
import threading
import time
import warnings
from typing import Any

from symbolic_nas.training.reports import Report
from symbolic_nas.tuner.evaluation import Evaluation, Outcome, Task
from symbolic_nas.tuner.executors.base import Slot, SlotExecutor, WorkerError
from symbolic_nas.tuner.executors.ray_connect import connect, load_error
from symbolic_nas.tuner.pickling import dumps

__all__ = ["RayExecutor", "connect"]

#: Seconds an actor may wait for a node with room before it is given up.
PLACEMENT_TIMEOUT = 60.0

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
    created: float = 0.0  # time.monotonic() when the actor was asked for.

    @property
    def name(self) -> str:
        return f"ray-{self.index}.{self.generation}"


class RayExecutor(SlotExecutor[_Slot]):
    """Runs tasks on ``workers`` reusable Ray actors (see the module docstring).

    Each actor loads the evaluation once and asks Ray for one CPU and
    ``gpus_per_trial`` GPUs. An actor past the time limit is killed and replaced;
    an actor that dies mid-trial (or whose node is lost) is replaced and its trial
    reported ``TrialStatus.LOST``: the tuner runs it again on the next free live actor
    (a replacement gets tasks only once it is ready). An actor that the cluster cannot
    place within ``placement_timeout`` seconds is given up with a ``RuntimeWarning`` and
    the search goes on with fewer actors. An actor that dies while starting is replaced
    and its task handed on, up to ``start_retries`` times in a row; one whose
    ``__init__`` raised (the evaluation cannot load, say a module the nodes cannot
    import) stops the search with
    :class:`~symbolic_nas.tuner.executors.base.WorkerError` at once.

    Args:
        workers: Number of actors, or ``"auto"`` (the cluster's CPUs, or its GPUs
            divided by ``gpus_per_trial``).
        gpus_per_trial: GPUs per actor (fractions pack several on one GPU).
        threads: Torch threads per actor.
        trial_timeout: Seconds before a trial is failed, or None.
        start_retries: How often in a row one actor may die while starting.
        address: The cluster to connect to (see :func:`connect`) when this process is
            not connected yet; None: a local Ray is started for the search.
        placement_timeout: Seconds before an actor that the cluster has no room for (more
            actors than its live nodes hold) is given up.

    Example:
        >>> executor = RayExecutor(workers=2, address="127.0.0.1:6379", placement_timeout=30)
        >>> executor.gpus_per_trial, executor.placement_timeout
        (0.0, 30.0)
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
        address: str | None = None,
        placement_timeout: float = PLACEMENT_TIMEOUT,
    ) -> None:
        super().__init__(trial_timeout=trial_timeout, start_retries=start_retries)
        if not placement_timeout > 0:
            raise ValueError(f"`placement_timeout` must be > 0, but got {placement_timeout!r}")
        self._workers = workers
        self.gpus_per_trial = float(gpus_per_trial)
        self.threads = threads
        self.address = address
        self.placement_timeout = float(placement_timeout)
        self._payload: Any = None
        self._remote: Any = None
        self._reports: Any = None
        self._started_ray = False
        self._backlog: collections.deque[Task] = collections.deque()  # Of given-up actors.

    def start(self, evaluation: Evaluation) -> None:
        ray = _ray()
        if not ray.is_initialized():
            if self.address is not None:
                connect(self.address)
            else:
                ray.init()
            self._started_ray = True
        self._check_fits()
        if self._workers == "auto":
            resources = ray.cluster_resources()
            if self.gpus_per_trial > 0:
                self.slots = max(1, int(resources.get("GPU", 0) / self.gpus_per_trial))
            else:
                self.slots = max(1, int(resources.get("CPU", 1)))
        else:
            self.slots = int(self._workers)
        self._remote = ray.remote(_Actor)
        self._reports = None
        if self.report_handler is not None:  # On the driver's node: it lives as long.
            here = ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(
                ray.get_runtime_context().get_node_id(), soft=False
            )
            options = {"num_cpus": 0, "max_concurrency": 1000, "scheduling_strategy": here}
            self._reports = ray.remote(_Reports).options(**options).remote()
        self._payload = ray.put(dumps(evaluation, main_by_reference=False))
        self._slots = [self._new_slot(i, 0) for i in range(self.slots)]

    def _check_fits(self) -> None:
        """Raises ValueError when no node of the cluster has one CPU and
        ``gpus_per_trial`` GPUs (before any actor is asked for)."""
        nodes = [n.get("Resources", {}) for n in _ray().nodes() if n.get("Alive")]
        if any(
            r.get("CPU", 0) >= 1 and r.get("GPU", 0) >= self.gpus_per_trial - 1e-9 for r in nodes
        ):
            return
        have = ", ".join(f"{r.get('CPU', 0):g} CPU + {r.get('GPU', 0):g} GPU" for r in nodes)
        raise ValueError(
            f"`gpus_per_trial` must fit on one node of the Ray cluster (each actor asks for "
            f"1 CPU and {self.gpus_per_trial:g} GPU), but got gpus_per_trial="
            f"{self.gpus_per_trial:g} and nodes with {have or 'nothing'}; add nodes with "
            "GPUs (`ray start --num-gpus=N`) or lower gpus_per_trial"
        )

    def _new_slot(self, index: int, generation: int) -> _Slot:
        remote = self._remote.options(num_cpus=1, num_gpus=self.gpus_per_trial, max_restarts=0)
        slot = _Slot(index=index, generation=generation, created=time.monotonic())
        slot.actor = remote.remote(self._payload, self.threads, slot.name, self._reports)
        slot.ready_ref = slot.actor.ready.remote()
        return slot

    # ------------------------------------------------------------------ which actor runs what

    def _usable(self, slot: _Slot) -> bool:
        """A free actor that may take a task: a ready one, or any while none is ready
        (at the start, tasks queue up behind the actors' loading)."""
        if slot.task is not None:
            return False
        return slot.ready_time is not None or all(s.ready_time is None for s in self._slots)

    def free_slots(self) -> int:
        return max(0, sum(1 for s in self._slots if self._usable(s)) - len(self._backlog))

    def submit(self, task: Task) -> str:
        usable = [s for s in self._slots if self._usable(s)]
        if len(usable) <= len(self._backlog):
            raise RuntimeError("no free actor: call wait() first")
        slot = min(usable, key=lambda s: s.ready_time is None)  # A ready one first.
        self._assign(slot, task)
        return slot.name

    def _assign(self, slot: _Slot, task: Task) -> None:
        slot.task, slot.submitted = task, time.monotonic()
        self._send(slot, task)

    def _dispatch_backlog(self) -> None:
        """Hands the tasks of given-up actors to free live actors."""
        while self._backlog:
            slot = next((s for s in self._slots if s.task is None and s.ready_time), None)
            if slot is None:
                return
            self._assign(slot, self._backlog.popleft())

    def wait(self, timeout: float | None) -> list[Outcome]:
        if self._pending:
            return self._drain()
        if not self._backlog and not any(s.task is not None for s in self._slots):
            return []
        self._poll(timeout)
        self._check_deadlines()
        return self._drain()

    def _send(self, slot: _Slot, task: Task) -> None:
        slot.ref = slot.actor.run.remote(task)

    def _poll(self, timeout: float | None) -> None:
        ray = _ray()
        self._check_ready()  # A ready actor's running task has a deadline.
        running = [s for s in self._slots if s.task is not None]
        refs = [s.ref for s in running]
        starting = [s.ready_ref for s in self._slots if s.ready_time is None]
        if refs or starting:
            done = self._wait_serving_reports(refs + starting, self._wait_seconds(timeout))
            if done and refs:
                done, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        else:
            done = []
        # An actor answers `ready` before it runs a task: checked first, a dead actor
        # that never got ready counts as a startup failure.
        self._check_ready()
        finished = set(done)
        for slot in running:
            if slot.ref in finished and slot in self._slots:  # (not replaced just now)
                self._collect(slot)
        self._check_placement()
        self._dispatch_backlog()

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

    def _check_placement(self) -> None:
        """Gives up actors beyond the cluster's room that waited ``placement_timeout``
        seconds (the newest first); an actor that the cluster has room for is left to
        start, however long that takes (a ``runtime_env`` set-up, say)."""
        now = time.monotonic()
        overdue = [
            s
            for s in self._slots
            if s.ready_time is None and now - s.created >= self.placement_timeout
        ]
        if not overdue:
            return
        excess = len(self._slots) - self._capacity()
        for slot in sorted(overdue, key=lambda s: s.created, reverse=True)[: max(0, excess)]:
            self._give_up(slot, now - slot.created)

    def _capacity(self) -> int:
        """How many actors the cluster's live nodes hold at once (all resources counted)."""
        total = 0
        for node in _ray().nodes():
            if not node.get("Alive"):
                continue
            resources = node.get("Resources", {})
            fits = int(resources.get("CPU", 0) + 1e-9)
            if self.gpus_per_trial > 0:
                fits = min(fits, int(resources.get("GPU", 0) / self.gpus_per_trial + 1e-9))
            total += fits
        return total

    def _give_up(self, slot: _Slot, waited: float) -> None:
        ray = _ray()
        ray.kill(slot.actor, no_restart=True)
        self._slots.remove(slot)
        self.slots = len(self._slots)
        if slot.task is not None:  # It never began: the next free live actor runs it.
            self._backlog.appendleft(slot.task)
        free = ray.available_resources()
        asked = f"1 CPU and {self.gpus_per_trial:g} GPU"
        where = (
            f"free now: {free.get('CPU', 0):g} CPU, {free.get('GPU', 0):g} GPU, "
            f"{len([n for n in ray.nodes() if n.get('Alive')])} nodes alive"
        )
        if not self._slots:
            self.close()
            raise WorkerError(
                f"no Ray actor could be placed: {slot.name} waited {waited:.0f} s for a node "
                f"with {asked} ({where}); add nodes or lower workers/gpus_per_trial"
            )
        warnings.warn(
            f"{slot.name} could not be placed on the Ray cluster within "
            f"{self.placement_timeout:g} s (it asks for {asked}; {where}); it is given "
            f"up and the search goes on with {len(self._slots)} actor(s)",
            RuntimeWarning,
            stacklevel=2,
        )

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
            raise WorkerError(load_error(error)) from error
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
        self._backlog.clear()
        if self._reports is not None:
            ray.kill(self._reports, no_restart=True)
            self._reports = None
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False
