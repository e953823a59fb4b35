"""The Ray executor: trials on reusable Ray actors, the algorithm stays in the driver.

Install with ``pip install 'symbolic-nas[ray]'``. Connect to a cluster before
searching (``ray start --head`` on the head node, ``ray start --address=HEAD:6379``
on the others, then ``ray.init(address="auto")`` in the driver); without a
connection, a local Ray instance is started for the search and shut down after it.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from typing import Any

from symbolic_nas.storage.trial import TrialStatus
from symbolic_nas.tuner.evaluation import Evaluation, Outcome, Task, dumps
from symbolic_nas.tuner.executors.local import Executor, WorkerError

__all__ = ["RayExecutor"]


def _ray() -> Any:
    """Ray, imported on first use (it is an optional dependency)."""
    try:
        return importlib.import_module("ray")
    except ImportError as e:
        raise ImportError(f"executor='ray' needs Ray: pip install 'symbolic-nas[ray]' ({e})") from e


class _Actor:
    """Holds one loaded evaluation and runs tasks on it."""

    def __init__(self, payload: bytes, threads: int, name: str) -> None:
        import cloudpickle
        import torch

        torch.set_num_threads(threads)
        self.evaluation: Evaluation = cloudpickle.loads(payload)
        self.evaluation.worker = name

    def ready(self) -> bool:
        return True

    def run(self, task: Task) -> Outcome:
        return self.evaluation.run(task)


@dataclasses.dataclass(eq=False)
class _Slot:
    index: int
    actor: Any
    ready_ref: Any
    ready_time: float | None = None
    task: Task | None = None
    ref: Any = None
    submitted: float = 0.0
    generation: int = 0

    @property
    def name(self) -> str:
        return f"ray-{self.index}.{self.generation}"


class RayExecutor(Executor):
    """Runs tasks on ``workers`` reusable Ray actors (see the module docstring).

    Each actor loads the evaluation once and asks Ray for one CPU and
    ``gpus_per_trial`` GPUs. An actor past the time limit is killed and replaced;
    an actor that dies mid-trial is replaced and its trial reported ``TrialStatus.LOST``.

    Args:
        workers: Number of actors, or ``"auto"`` (the cluster's CPUs, or its GPUs
            divided by ``gpus_per_trial``).
        gpus_per_trial: GPUs per actor (fractions pack several on one GPU).
        threads: Torch threads per actor.
        trial_timeout: Seconds before a trial is failed, or None.
    """

    def __init__(
        self,
        *,
        workers: int | str = 2,
        gpus_per_trial: float = 0.0,
        threads: int = 1,
        trial_timeout: float | None = None,
    ) -> None:
        self._workers = workers
        self.gpus_per_trial = float(gpus_per_trial)
        self.threads = threads
        self.trial_timeout = trial_timeout
        self._slots: list[_Slot] = []
        self._payload: Any = None
        self._remote: Any = None
        self._started_ray = False
        self._startup_failures = 0

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
        self._payload = ray.put(dumps(evaluation, main_by_reference=False))
        self._slots = [self._new_slot(i, 0) for i in range(self.slots)]

    def _new_slot(self, index: int, generation: int) -> _Slot:
        remote = self._remote.options(num_cpus=1, num_gpus=self.gpus_per_trial, max_restarts=0)
        slot = _Slot(index=index, actor=None, ready_ref=None, generation=generation)
        slot.actor = remote.remote(self._payload, self.threads, slot.name)
        slot.ready_ref = slot.actor.ready.remote()
        return slot

    def free_slots(self) -> int:
        return sum(1 for s in self._slots if s.task is None)

    def submit(self, task: Task) -> str:
        slot = next((s for s in self._slots if s.task is None), None)
        if slot is None:
            raise RuntimeError("no free actor: call wait() first")
        slot.task, slot.submitted = task, time.monotonic()
        slot.ref = slot.actor.run.remote(task)
        return slot.name

    def wait(self, timeout: float | None) -> list[Outcome]:
        ray = _ray()
        running = [s for s in self._slots if s.task is not None]
        if not running:
            return []
        self._check_ready()
        now = time.monotonic()
        limit = None if timeout is None else now + timeout
        for slot in running:
            deadline = self._deadline(slot)
            if deadline is not None:
                limit = deadline if limit is None else min(limit, deadline)
        wait_for = None if limit is None else max(0.0, limit - now)
        refs = [s.ref for s in running]
        done, _ = ray.wait(refs, num_returns=1, timeout=wait_for)
        if done:
            done, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        outcomes: list[Outcome] = []
        finished = set(done)
        for slot in running:
            if slot.ref in finished:
                outcomes += self._collect(slot)
        self._check_ready()
        outcomes += self._check_deadlines()
        return outcomes

    def _deadline(self, slot: _Slot) -> float | None:
        if self.trial_timeout is None or slot.task is None or slot.ready_time is None:
            return None
        return max(slot.submitted, slot.ready_time) + self.trial_timeout

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
                    self._startup_failures += 1
                    if self._startup_failures > 3:
                        self.close()
                        raise WorkerError(f"Ray actors cannot load the evaluation: {e}") from e
                    continue
                slot.ready_time = time.monotonic()
                self._startup_failures = 0

    def _collect(self, slot: _Slot) -> list[Outcome]:
        ray = _ray()
        task = slot.task
        assert task is not None
        try:
            outcome: Outcome = ray.get(slot.ref)
        except ray.exceptions.RayError as e:
            elapsed = time.monotonic() - slot.submitted
            lost = Outcome(
                task.trial_id,
                TrialStatus.LOST,
                error=f"WorkerDied: {slot.name} died mid-trial ({type(e).__name__})",
                worker=slot.name,
                started=time.time() - elapsed,
                duration=elapsed,
            )
            self._replace(slot)
            return [lost]
        outcome.worker = slot.name
        slot.task, slot.ref = None, None
        return [outcome]

    def _check_deadlines(self) -> list[Outcome]:
        outcomes = []
        now = time.monotonic()
        for slot in list(self._slots):
            deadline = self._deadline(slot)
            if deadline is None or now < deadline or slot.task is None:
                continue
            elapsed = now - max(slot.submitted, slot.ready_time or slot.submitted)
            outcomes.append(
                Outcome(
                    slot.task.trial_id,
                    TrialStatus.FAILED,
                    error=(
                        f"TimeoutError: trial {slot.task.trial_id} ran past its time limit of "
                        f"{self.trial_timeout:g} s; {slot.name} was killed and replaced"
                    ),
                    worker=slot.name,
                    started=time.time() - elapsed,
                    duration=elapsed,
                )
            )
            self._replace(slot)
        return outcomes

    def _replace(self, slot: _Slot) -> None:
        ray = _ray()
        ray.kill(slot.actor, no_restart=True)
        position = self._slots.index(slot)
        self._slots[position] = self._new_slot(slot.index, slot.generation + 1)

    def close(self) -> None:
        ray = _ray()
        for slot in self._slots:
            ray.kill(slot.actor, no_restart=True)
        self._slots = []
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False
