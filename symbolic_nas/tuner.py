"""``sn.search``: the search loop, its failure policy, persistence and resume.

The driver process holds the algorithm. It proposes as soon as a worker is
free, hands tasks to an executor (:mod:`symbolic_nas.executors`), gives
feedback in whatever order trials finish, journals every event to the run
directory (:mod:`symbolic_nas.rundir`) and calls the callbacks. Workers only
build and evaluate children.
"""

from __future__ import annotations

import collections
import hashlib
import importlib.metadata
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from symbolic_nas import algorithms as _algorithms
from symbolic_nas.callbacks import Callback, SearchContext
from symbolic_nas.codec import Codec, encode
from symbolic_nas.evaluation import COMPLETED, LOST, Evaluation, Outcome, Task
from symbolic_nas.evaluators import input_of
from symbolic_nas.executors import Executor, InlineExecutor, ProcessExecutor, visible_gpus
from symbolic_nas.rundir import (
    END,
    PROPOSE,
    RUN,
    START,
    STOP,
    TENSORBOARD,
    ResumeError,
    Run,
    read_history,
    replay,
    space_fingerprint,
)
from symbolic_nas.rundir import (
    LOST as LOST_EVENT,
)
from symbolic_nas.trial import FAILED, RUNNING, SearchResult, Trial
from symbolic_nas.tuner_options import CallbackList, SearchOptions

__all__ = ["ResumeError", "TooManyFailuresError", "search", "trial_seed"]

# Settings a resumed run must share with the run it continues.
_MUST_MATCH = ("algorithm", "seed", "failure_reward", "evaluator_input")


class TooManyFailuresError(RuntimeError):
    """Too many trials failed in a row; the run stopped (it can be resumed)."""


def trial_seed(seed: int | None, trial_id: int) -> int | None:
    """The torch seed of a trial's evaluation: a hash of the search seed and the trial id.

    Example:
        >>> trial_seed(0, 3) == trial_seed(0, 3) != trial_seed(1, 3)
        True
        >>> trial_seed(None, 3) is None
        True
    """
    if seed is None:
        return None
    digest = hashlib.sha256(f"symbolic_nas:{seed}:{trial_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def search(
    space: Any,
    evaluate: Callable[[Any], Any],
    *,
    algorithm: str | _algorithms.Algorithm = "reinforce",
    num_trials: int = 100,
    workers: int | str = 1,
    executor: str | Executor = "auto",
    run_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    seed: int | None = 0,
    failure_reward: float | None = None,
    max_consecutive_failures: int | None = 10,
    trial_timeout: float | None = None,
    max_retries: int = 2,
    gpus: Sequence[int | str] | None = None,
    gpus_per_trial: float = 0.0,
    worker_threads: int = 1,
    callbacks: Sequence[Callback] = (),
    tensorboard: bool = True,
    progress: bool | None = None,
    checkpoint_interval: float = 10.0,
    metadata: Mapping[str, Any] | None = None,
) -> SearchResult:
    """Searches ``space`` for the architecture with the highest reward.

    Each trial materialises the proposed architecture (a fresh ``nn.Module`` for
    module spaces) and calls ``evaluate`` on it. Torch's CPU generator is seeded
    with :func:`trial_seed` ``(seed, trial.id)`` for the evaluation (and restored
    afterwards), so a trial builds the same initial weights on any worker and
    when it is re-run.

    **Failures.** An exception in building, forward or training (including
    :class:`~symbolic_nas.training.NonFiniteLossError` and CUDA out-of-memory
    errors), a non-finite reward, or a trial past ``trial_timeout`` marks the
    trial failed with its error text; the algorithm is told ``failure_reward``
    (None: "failed, no learning signal") and the search goes on. A trial whose
    worker process dies is run again, up to ``max_retries`` times. After
    ``max_consecutive_failures`` failed trials in a row the run stops with
    :class:`TooManyFailuresError` (it can be resumed). A finished trial is never
    lost: it is journaled before the algorithm hears of it.

    **Executors.** ``"inline"`` runs trials one at a time in this process (the
    time limit then uses ``SIGALRM``, so the call must come from the main
    thread); ``"process"`` keeps ``workers`` persistent ``spawn`` processes with
    ``worker_threads`` torch threads each, pinned round-robin to ``gpus``;
    ``"ray"`` runs reusable Ray actors with ``gpus_per_trial`` GPUs each (call
    ``ray.init(address=...)`` first to use a cluster); ``"auto"`` is
    ``"inline"`` for one worker and ``"process"`` otherwise.

    **Run directory.** With ``run_dir``, the configuration, a journal of every
    event and the algorithm's checkpoint are written there (see
    :mod:`symbolic_nas.rundir`), plus TensorBoard logs under ``tensorboard/``.
    After any crash, the same call with ``resume=True`` continues: finished
    trials are kept, trials that were running are run again, and the algorithm
    is restored. ``resume=True`` on a missing or empty ``run_dir`` starts a new
    run; ``resume=False`` on a directory that is not empty raises.

    Args:
        space: The search space (a symbolic value with placeholders, or ``sn.annotate``'s).
        evaluate: Called with the built model (or tokens / DNA, see ``sn.evaluator``);
            returns the reward (a float) or a dict with a ``"reward"`` key whose
            other JSON-able entries are kept as metrics. ``sn.Trainer()`` is one.
        algorithm: A registered algorithm name (built with ``seed``) or an instance.
        num_trials: Trials to finish (completed or failed), resumed ones included.
        workers: Parallel trials, or ``"auto"`` (one per GPU, else one per CPU core).
        executor: ``"auto"``, ``"inline"``, ``"process"``, ``"ray"``, or an
            :class:`~symbolic_nas.executors.Executor` instance (started and closed
            by the search; ``workers``, ``gpus`` and ``trial_timeout`` are then its own).
        run_dir: The run directory, or None to keep everything in memory.
        resume: Continue the run in ``run_dir``.
        seed: Seed of a named algorithm and of the trials' torch generator.
        failure_reward: What the algorithm is told for a failed trial: None
            (no learning signal) or a finite penalty.
        max_consecutive_failures: Stop after this many failures in a row (None: never).
        trial_timeout: Seconds before a trial is failed (None: no limit).
        max_retries: How often a trial is re-run after its worker died.
        gpus: ``CUDA_VISIBLE_DEVICES`` entries for process workers (None: all visible).
        gpus_per_trial: GPUs per Ray actor.
        worker_threads: Torch threads per process worker.
        callbacks: Extra :class:`~symbolic_nas.callbacks.Callback` objects.
        tensorboard: Log to ``<run_dir>/tensorboard`` (only with a ``run_dir``).
        progress: Show a progress bar; None: when stderr is a terminal.
        checkpoint_interval: Minimum seconds between algorithm checkpoints (0: after
            every event); one is always written when a session ends.
        metadata: JSON-able data stored in the run's config (the CLI keeps what it
            needs to resume there).

    Returns:
        The :class:`~symbolic_nas.trial.SearchResult`: every finished trial, by id.

    Raises:
        TooManyFailuresError: After ``max_consecutive_failures`` failures in a row.
        ResumeError: If ``run_dir`` cannot be resumed with these arguments.
        ValueError: If an argument is invalid.

    Example:
        >>> import symbolic_nas as sn
        >>> space = {"width": sn.oneof([8, 16, 32]), "depth": sn.intv(1, 3)}
        >>> result = sn.search(space, lambda arch: arch["width"] / (1 + arch["depth"]),
        ...                    algorithm="random", num_trials=12, seed=0)
        >>> len(result.trials), result.best.metrics, result.best.reward
        (12, {}, 16.0)
        >>> sn.materialize(space, result.best.dna)
        {'width': 32, 'depth': 1}
    """
    options = SearchOptions.validated(
        algorithm=algorithm,
        num_trials=num_trials,
        workers=workers,
        executor=executor,
        run_dir=run_dir,
        resume=resume,
        seed=seed,
        failure_reward=failure_reward,
        max_consecutive_failures=max_consecutive_failures,
        trial_timeout=trial_timeout,
        max_retries=max_retries,
        gpus=gpus,
        gpus_per_trial=gpus_per_trial,
        worker_threads=worker_threads,
        callbacks=callbacks,
        tensorboard=tensorboard,
        progress=progress,
        checkpoint_interval=checkpoint_interval,
        metadata=metadata,
    )
    if not callable(evaluate):
        raise ValueError(f"`evaluate` must be callable, but got {evaluate!r}")
    codec = space if isinstance(space, Codec) else encode(space)
    return _Search(codec, evaluate, options).run()


class _Search:
    """One session of a search (a fresh run or a resumed one)."""

    def __init__(
        self, codec: Codec, evaluate: Callable[[Any], Any], options: SearchOptions
    ) -> None:
        self.codec = codec
        self.evaluate = evaluate
        self.options = options
        self.fingerprint = space_fingerprint(codec)
        self.run_storage = Run(options.run_dir)
        self.algorithm = _algorithms.get(
            options.algorithm,
            **(
                {}
                if isinstance(options.algorithm, _algorithms.Algorithm)
                else {"seed": options.seed}
            ),
        )
        self.finished: dict[int, Trial] = {}
        self.finished_order: list[Trial] = []
        self.active: dict[int, Trial] = {}
        self.queue: collections.deque[Trial] = collections.deque()
        self.attempts: dict[int, int] = {}
        self.consecutive_failures = 0
        self.recent_errors: collections.deque[str] = collections.deque(maxlen=3)
        self.consistent = True
        self.last_checkpoint = 0.0
        self.resumed = False
        self.history_sessions = 0

    # ------------------------------------------------------------------ config

    def _config(self) -> dict[str, Any]:
        o = self.options
        return {
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "version": _version(),
            "space": {
                "fingerprint": self.fingerprint,
                "num_decisions": self.codec.num_decisions,
                "space_size": self.codec.space_size,
            },
            "algorithm": self.algorithm.name,
            "seed": o.seed,
            "num_trials": o.num_trials,
            "failure_reward": o.failure_reward,
            "evaluator_input": input_of(self.evaluate),
            "evaluator": _qualified_name(self.evaluate),
            "metadata": o.metadata,
        }

    def _prepare(self) -> None:
        """Starts a new run, or restores a resumed one from its directory."""
        o, run = self.options, self.run_storage
        config = self._config()
        self.algorithm.setup(self.codec, budget=o.num_trials)
        if run.holds_run():
            if not o.resume:
                raise ValueError(
                    f"`run_dir` {o.run_dir!r} already holds a run; pass resume=True to continue "
                    "it, or choose another run_dir (it is never overwritten)"
                )
            self._restore(config)
        elif not run.is_empty():
            raise ValueError(
                f"`run_dir` must be empty or missing for a new run, but {o.run_dir!r} has files "
                "and no run"
            )
        else:
            run.write_config(config)
            run.read_journal()
        session = self.history_sessions + 1 if self.resumed else 1
        run.append(
            {
                "event": RUN,
                "session": session,
                "resumed": self.resumed,
                "num_trials": o.num_trials,
                "time": time.time(),
                "pid": os.getpid(),
            }
        )
        self._checkpoint(force=True)

    def _restore(self, config: dict[str, Any]) -> None:
        run = self.run_storage
        old = run.read_config()
        if old.get("space", {}).get("fingerprint") != self.fingerprint:
            raise ResumeError(
                f"`run_dir` {self.options.run_dir!r} holds a run of another space (its "
                f"fingerprint is {old.get('space', {}).get('fingerprint')}, this space's is "
                f"{self.fingerprint}); resume it with the same space, or use a new run_dir"
            )
        differences = [
            f"{key}: {old.get(key)!r} in the run, {config[key]!r} now"
            for key in _MUST_MATCH
            if old.get(key) != config[key]
        ]
        if differences:
            raise ResumeError(
                f"`run_dir` {self.options.run_dir!r} holds a run with an incompatible "
                f"configuration ({'; '.join(differences)}); resume it with the same settings, "
                "or use a new run_dir"
            )
        if old.get("num_trials") != config["num_trials"]:
            run.write_config(
                {
                    **{k: v for k, v in old.items() if k != "format"},
                    "num_trials": config["num_trials"],
                }
            )
        records = run.read_journal()
        checkpoint = run.load_checkpoint()
        if checkpoint is not None and checkpoint.get("fingerprint") != self.fingerprint:
            raise ResumeError("the checkpoint in `run_dir` belongs to another space")
        history = read_history(records, self.codec)
        self.history_sessions = history.sessions
        replaced = replay(self.algorithm, records, checkpoint)
        self.resumed = True
        for trial in history.finished.values():  # In finishing order.
            self.finished[trial.id] = trial
            self.finished_order.append(trial)
        self.attempts = dict(history.attempts)
        for proposal in replaced:
            self.consistent = False
            run.append(_propose_record(proposal, replaces=True))
            self.consistent = True
        outstanding = {p.id: p for p in self.algorithm.outstanding}
        unfinished = set(history.unfinished) | set(outstanding)
        for trial_id in sorted(unfinished):
            proposal = outstanding.get(trial_id)
            if proposal is None:
                raise ResumeError(
                    f"trial {trial_id} is unfinished in the journal but the restored algorithm "
                    "did not propose it; the checkpoint does not match the journal"
                )
            if trial_id not in history.proposals:
                run.append(_propose_record(proposal))
            self.queue.append(Trial(proposal.id, list(proposal.tokens), codec=self.codec))

    # ------------------------------------------------------------------ loop

    def _make_executor(self) -> Executor:
        o = self.options
        kind = o.executor
        if isinstance(kind, Executor):
            return kind
        if kind == "auto":
            kind = "inline" if o.workers == 1 else "process"
        if kind == "inline":
            if o.workers not in (1, "auto"):
                raise ValueError(
                    f"`workers` must be 1 with executor='inline', but got {o.workers!r}"
                )
            return InlineExecutor(trial_timeout=o.trial_timeout)
        if kind == "process":
            gpus = visible_gpus() if o.gpus is None else o.gpus
            workers = o.workers if o.workers != "auto" else (len(gpus) or _cpu_count())
            return ProcessExecutor(
                workers=workers, gpus=gpus, threads=o.worker_threads, trial_timeout=o.trial_timeout
            )
        from symbolic_nas.executors_ray import RayExecutor

        return RayExecutor(
            workers=o.workers,
            gpus_per_trial=o.gpus_per_trial,
            threads=o.worker_threads,
            trial_timeout=o.trial_timeout,
        )

    def run(self) -> SearchResult:
        o = self.options
        callbacks = self._callbacks()
        self._prepare()
        context = SearchContext(
            codec=self.codec,
            algorithm=self.algorithm,
            num_trials=o.num_trials,
            run_dir=o.run_dir,
            trials=list(self.finished_order),
            start_time=time.time(),
            config=self.run_storage.read_config(),
            resumed=self.resumed,
        )
        self.context = context
        reason = "error"
        executor: Executor | None = None
        try:
            callbacks("on_search_start", context)
            if len(self.finished) < o.num_trials:
                executor = self._make_executor()
                executor.start(Evaluation(self.codec, self.evaluate))
                self._loop(executor, callbacks)
            reason = "completed"
        except KeyboardInterrupt:
            reason = "interrupted"
            raise
        except TooManyFailuresError:
            reason = "too_many_failures"
            raise
        finally:
            if executor is not None:
                executor.close()
            if self.consistent:
                self._checkpoint(force=True)
            self.run_storage.append(
                {"event": STOP, "reason": reason, "time": time.time()}, durable=True
            )
            result = self._result()
            callbacks("on_search_end", result, context)
            self.run_storage.close()
        return result

    def _callbacks(self) -> CallbackList:
        o = self.options
        callbacks: list[Callback] = []
        if o.run_dir is not None and o.tensorboard:
            from symbolic_nas.tensorboard import TensorBoardCallback

            callbacks.append(TensorBoardCallback(os.path.join(o.run_dir, TENSORBOARD)))
        if o.progress:
            from symbolic_nas.progress import ProgressCallback

            callbacks.append(ProgressCallback(total=o.num_trials, disable=False))
        return CallbackList(callbacks + o.callbacks)

    def _loop(self, executor: Executor, callbacks: CallbackList) -> None:
        o = self.options
        while True:
            while (
                executor.free_slots() > 0 and len(self.finished) + len(self.active) < o.num_trials
            ):
                trial = self.queue.popleft() if self.queue else self._propose()
                self._start(trial, executor, callbacks)
            if not self.active:
                return
            for outcome in executor.wait(timeout=1.0):
                self._finish(outcome, callbacks)

    def _propose(self) -> Trial:
        self.consistent = False
        proposal = self.algorithm.propose()
        self.run_storage.append(_propose_record(proposal))
        self.consistent = True
        self._checkpoint()
        return Trial(proposal.id, list(proposal.tokens), codec=self.codec)

    def _start(self, trial: Trial, executor: Executor, callbacks: CallbackList) -> None:
        attempt = self.attempts.get(trial.id, 0) + 1
        self.attempts[trial.id] = attempt
        task = Task(trial.id, trial.tokens, trial_seed(self.options.seed, trial.id), attempt)
        worker = executor.submit(task)
        trial.status, trial.attempts, trial.worker = RUNNING, attempt, worker
        trial.started = time.time()
        self.run_storage.append(
            {
                "event": START,
                "trial": trial.id,
                "attempt": attempt,
                "worker": worker,
                "time": trial.started,
            }
        )
        self.active[trial.id] = trial
        callbacks("on_trial_start", trial, self.context)

    def _finish(self, outcome: Outcome, callbacks: CallbackList) -> None:
        trial = self.active.pop(outcome.trial_id, None)
        if trial is None:
            return
        if outcome.status == LOST:
            if trial.attempts <= self.options.max_retries:
                self.run_storage.append(
                    {
                        "event": LOST_EVENT,
                        "trial": trial.id,
                        "attempt": trial.attempts,
                        "error": outcome.error,
                        "time": time.time(),
                    }
                )
                self.queue.appendleft(trial)
                return
            outcome.error = (
                f"{outcome.error} (attempt {trial.attempts} of {self.options.max_retries + 1})"
            )
            outcome.status = FAILED
        trial.status = COMPLETED if outcome.status == COMPLETED else FAILED
        trial.reward = outcome.reward if trial.status == COMPLETED else None
        trial.metrics = dict(outcome.metrics)
        trial.error, trial.traceback = outcome.error, outcome.traceback
        trial.started, trial.duration = outcome.started, outcome.duration
        trial.worker = outcome.worker or trial.worker
        feedback = trial.reward if trial.status == COMPLETED else self.options.failure_reward
        proposal = {p.id: p for p in self.algorithm.outstanding}[trial.id]
        self.consistent = False
        self.run_storage.append(
            {"event": END, "trial": trial.to_record(), "feedback": feedback}, durable=True
        )
        self.algorithm.feedback(proposal, feedback)
        self.consistent = True
        self.finished[trial.id] = trial
        self.finished_order.append(trial)
        self.context.trials.append(trial)
        self._checkpoint()
        callbacks("on_trial_end", trial, self.context)
        self._count_failure(trial)

    def _count_failure(self, trial: Trial) -> None:
        limit = self.options.max_consecutive_failures
        if trial.status == COMPLETED:
            self.consecutive_failures = 0
            return
        self.consecutive_failures += 1
        self.recent_errors.append(f"trial {trial.id}: {trial.error}")
        if limit is not None and self.consecutive_failures >= limit:
            raise TooManyFailuresError(
                f"{self.consecutive_failures} trials failed in a row "
                f"(max_consecutive_failures={limit}); the run stopped. Last errors:\n  "
                + "\n  ".join(self.recent_errors)
                + (
                    "\nFix the cause and continue with resume=True (finished trials are kept)."
                    if self.options.run_dir is not None
                    else "\nFix the cause and search again (give run_dir to be able to resume)."
                )
            )

    def _checkpoint(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_checkpoint < self.options.checkpoint_interval:
            return
        self.run_storage.save_checkpoint(self.algorithm.state_dict(), self.fingerprint)
        self.last_checkpoint = now

    def _result(self) -> SearchResult:
        return SearchResult(
            trials=sorted(self.finished.values(), key=lambda t: t.id),
            codec=self.codec,
            run_dir=self.options.run_dir,
            algorithm=self.algorithm.name,
        )


def _propose_record(proposal: Any, *, replaces: bool = False) -> dict[str, Any]:
    record = {
        "event": PROPOSE,
        "trial": proposal.id,
        "tokens": list(proposal.tokens),
        "version": proposal.version,
        "meta": dict(proposal.meta),
        "time": time.time(),
    }
    if replaces:
        record["replaces"] = True
    return record


def _qualified_name(fn: Any) -> str:
    target = fn if hasattr(fn, "__qualname__") else type(fn)
    return f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', '?')}"


def _version() -> str:
    try:
        return importlib.metadata.version("symbolic-nas")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
