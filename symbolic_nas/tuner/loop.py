"""``sn.search``: the search loop, its failure policy, persistence and resume.

The driver process holds the algorithm. It proposes as soon as a worker is
free, hands tasks to an executor (:mod:`symbolic_nas.tuner.executors.local`, chosen
by :mod:`symbolic_nas.tuner.executor_choice`), gives feedback in whatever order
trials finish, journals every event to the run directory
(:mod:`symbolic_nas.storage.rundir`) and calls the callbacks. Workers only build and
evaluate children.
"""

from __future__ import annotations

import collections
import hashlib
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from symbolic_nas import algorithms as _algorithms
from symbolic_nas.space.codec import Codec, encode
from symbolic_nas.storage.records import (
    end_record,
    lost_record,
    propose_record,
    run_record,
    start_record,
    stop_record,
)
from symbolic_nas.storage.resume import settings
from symbolic_nas.storage.rundir import (
    ResumeError,
    Run,
    RunInUseError,
    space_fingerprint,
)
from symbolic_nas.storage.trial import SearchResult, Trial, TrialStatus
from symbolic_nas.storage.weights import (
    kept_trial_ids,
    prune_weights,
    save_weights,
    weights_threshold,
)
from symbolic_nas.training.reports import Report
from symbolic_nas.tuner.callbacks import Callback, SearchContext
from symbolic_nas.tuner.evaluation import Evaluation, Outcome, Task
from symbolic_nas.tuner.evaluators import input_of, is_stateful
from symbolic_nas.tuner.executor_choice import make_executor, spawns_workers
from symbolic_nas.tuner.executors.base import Executor
from symbolic_nas.tuner.executors.main_guard import check_main_module, check_not_bootstrapping
from symbolic_nas.tuner.objectives import (
    ObjectiveMissingError,
    objective_vector,
    with_objectives,
)
from symbolic_nas.tuner.options import CallbackList, SearchOptions, check_single_process
from symbolic_nas.tuner.pruning import Pruning, pruned_feedback
from symbolic_nas.tuner.resume import EvaluatorChangedWarning, restore, run_config
from symbolic_nas.validation import InvalidParameterError

__all__ = [
    "EvaluatorChangedWarning",
    "ResumeError",
    "RunInUseError",
    "TooManyFailuresError",
    "run",
    "trial_seed",
]


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


def run(
    space: Any,
    evaluate: Callable[[Any], Any],
    options: SearchOptions,
    *,
    default_callbacks: Callable[[SearchOptions], Sequence[Callback]] | None = None,
) -> SearchResult:
    """Runs one session of a search with already validated options.

    This is the tuner's entry point; :func:`symbolic_nas.search` validates its
    keyword arguments into ``options`` and passes the review layer's callbacks
    (TensorBoard, progress bar) as ``default_callbacks``, so the tuner never
    imports the review layer.

    Args:
        space: The search space, or its :class:`~symbolic_nas.space.codec.Codec`.
        evaluate: The evaluator (see :func:`symbolic_nas.search`).
        options: The validated options.
        default_callbacks: Builds the callbacks that run before ``options.callbacks``.

    Returns:
        The :class:`~symbolic_nas.storage.trial.SearchResult`.
    """
    check_not_bootstrapping()  # Before the run directory is touched (see main_guard).
    if spawns_workers(options):
        check_main_module()
    if not callable(evaluate):
        raise ValueError(f"`evaluate` must be callable, but got {evaluate!r}")
    if options.keep_weights is not None and input_of(evaluate) != "model":
        raise ValueError(
            "`keep_weights` needs an evaluator of the built model (it keeps the model's "
            f"state_dict), but `evaluate` takes {input_of(evaluate)!r}"
        )
    codec = space if isinstance(space, Codec) else encode(space)
    check_single_process(evaluate, options)
    if is_stateful(evaluate):
        evaluate.bind(codec)  # type: ignore[attr-defined]  # may refuse the space
    defaults = list(default_callbacks(options)) if default_callbacks is not None else []
    return _Search(codec, evaluate, options, defaults).run()


class _Search:
    """One session of a search (a fresh run or a resumed one)."""

    def __init__(
        self,
        codec: Codec,
        evaluate: Callable[[Any], Any],
        options: SearchOptions,
        default_callbacks: list[Callback],
    ) -> None:
        self.codec = codec
        self.default_callbacks = default_callbacks
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
        self.attempts: dict[int, int] = {}  # Starts of each trial.
        self.deaths: dict[int, int] = {}  # Deaths of each trial's worker (vs max_retries).
        self.rerun_causes: dict[int, str] = {}  # Why a trial that started starts again.
        self.consecutive_failures = 0
        self.recent_errors: collections.deque[str] = collections.deque(maxlen=3)
        self.consistent = True
        self.last_checkpoint = 0.0
        self.resumed = False
        self.history_sessions = 0
        self.weights_warned = False
        if options.pruner is not None and self.algorithm.schedules_budget:
            raise InvalidParameterError(
                f"`pruner` must be None with algorithm {self.algorithm.name!r}, which gives "
                f"each trial its budget (a multi-fidelity schedule), but got {options.pruner!r}"
            )
        self.pruning = Pruning(
            options.pruner.fresh() if options.pruner is not None else None,
            self.run_storage.append,
            self._on_report,
        )

    # ------------------------------------------------------------------ start

    def _prepare(self) -> None:
        """Starts a new run, or restores a resumed one from its directory."""
        o, run = self.options, self.run_storage
        config = run_config(
            self.codec, self.fingerprint, self.algorithm, self.evaluate, self.options
        )
        self.algorithm.setup(self.codec, budget=o.num_trials)
        if not run.holds_run() and not run.is_empty():  # Checked before locking, and again.
            raise ValueError(
                f"`run_dir` must be empty or missing for a new run, but {o.run_dir!r} has files "
                "and no run"
            )
        run.acquire()  # One driver at a time, until run.close().
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
        if self.resumed and is_stateful(self.evaluate):
            state = run.load_evaluator_state()
            if state is not None:
                self.evaluate.load_state_dict(state)  # type: ignore[attr-defined]
        session = self.history_sessions + 1 if self.resumed else 1
        run.append(
            run_record(
                session=session,
                resumed=self.resumed,
                num_trials=o.num_trials,
                settings=settings(self.algorithm, o.num_trials),
            )
        )
        self._checkpoint(force=True)

    def _restore(self, config: dict[str, Any]) -> None:
        restored = restore(
            self.run_storage,
            config,
            codec=self.codec,
            fingerprint=self.fingerprint,
            algorithm=self.algorithm,
            run_dir=self.options.run_dir,
        )
        self.history_sessions = restored.sessions
        self.resumed = True
        self.pruning.rebuild(self.run_storage.read_journal())
        for trial in restored.finished:  # In finishing order.
            self.finished[trial.id] = trial
            self.finished_order.append(trial)
        self.attempts = restored.attempts
        self.deaths = restored.deaths
        self.rerun_causes = restored.rerun_causes
        self.queue.extend(restored.queue)

    # ------------------------------------------------------------------ loop

    def run(self) -> SearchResult:
        o = self.options
        callbacks = self.callbacks = self._callbacks()
        try:
            self._prepare()
        except BaseException:
            self.run_storage.close()  # Releases the run directory's lock.
            raise
        context = SearchContext(
            codec=self.codec,
            algorithm=self.algorithm,
            num_trials=o.num_trials,
            run_dir=o.run_dir,
            trials=list(self.finished_order),
            start_time=time.time(),
            config=self.run_storage.read_config(),
            resumed=self.resumed,
            evaluator=self.evaluate,
        )
        self.context = context
        reason = "error"
        executor: Executor | None = None
        try:
            callbacks("on_search_start", context)
            if len(self.finished) < o.num_trials:
                executor = make_executor(o)
                executor.set_report_handler(self.pruning.handle)
                executor.start(Evaluation(self.codec, with_objectives(self.evaluate, o.objectives)))
                self._loop(executor, callbacks)
            reason = "completed"
        except KeyboardInterrupt:
            reason = "interrupted"
            raise
        except TooManyFailuresError:
            reason = "too_many_failures"
            raise
        finally:
            try:
                if executor is not None:
                    executor.close()
                if self.consistent:
                    self._checkpoint(force=True)
                self.run_storage.append(stop_record(reason), durable=True)
                result = self._result()
                callbacks("on_search_end", result, context)
            finally:
                self.run_storage.close()  # Releases the run directory's lock.
        return result

    def _callbacks(self) -> CallbackList:
        return CallbackList(self.default_callbacks + self.options.callbacks)

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
        self.run_storage.append(propose_record(proposal))
        self.consistent = True
        self._checkpoint()
        return Trial(
            proposal.id, list(proposal.tokens), codec=self.codec, floats=dict(proposal.floats)
        )

    def _start(self, trial: Trial, executor: Executor, callbacks: CallbackList) -> None:
        attempt = self.attempts.get(trial.id, 0) + 1
        self.attempts[trial.id] = attempt
        task = Task(
            trial.id,
            trial.tokens,
            trial_seed(self.options.seed, trial.id),
            attempt,
            keep_weights=self._weights_threshold(),
            floats=dict(trial.floats),
            budget=self._budget(trial),
        )
        worker = executor.submit(task)
        trial.status, trial.attempts, trial.worker = TrialStatus.RUNNING, attempt, worker
        trial.started = time.time()
        self.run_storage.append(start_record(trial, cause=self.rerun_causes.pop(trial.id, None)))
        self.active[trial.id] = trial
        callbacks("on_trial_start", trial, self.context)

    def _budget(self, trial: Trial) -> float | None:
        """The trial's budget: its proposal's (a multi-fidelity algorithm's schedule),
        else the pruner's; None: the evaluator's own choice."""
        proposal = self.algorithm.outstanding_proposal(trial.id)
        if proposal is not None and proposal.budget is not None:
            return proposal.budget
        return self.pruning.budget(trial.id)

    def _finish(self, outcome: Outcome, callbacks: CallbackList) -> None:
        trial = self.active.pop(outcome.trial_id, None)
        if trial is None:
            return
        if (outcome.error or "").startswith(f"{ObjectiveMissingError.__name__}:"):
            # Not a failed trial but a search that cannot go on: stop before journaling it.
            raise ObjectiveMissingError(
                f"trial {trial.id}: {outcome.error.partition(': ')[2]}"  # type: ignore[union-attr]
            )
        if outcome.status == TrialStatus.LOST:
            # Only deaths of the trial's own worker count against max_retries, not the
            # attempts cut short by the driver stopping (rerun cause "driver_stopped").
            deaths = self.deaths[trial.id] = self.deaths.get(trial.id, 0) + 1
            if deaths <= self.options.max_retries:
                self.run_storage.append(lost_record(trial, outcome.error))
                self.rerun_causes[trial.id] = "worker_died"
                self.queue.appendleft(trial)
                return
            stopped = trial.attempts - deaths
            outcome.error = (
                f"{outcome.error} (attempt {deaths} of {self.options.max_retries + 1}"
                + (f"; {stopped} more cut short by the driver stopping" if stopped else "")
                + ")"
            )
            outcome.status = TrialStatus.FAILED
        completed = outcome.status == TrialStatus.COMPLETED
        pruned = outcome.status == TrialStatus.PRUNED
        trial.status = outcome.status if completed or pruned else TrialStatus.FAILED
        trial.reward = outcome.reward if completed else None
        trial.metrics = dict(outcome.metrics)
        budget = self._budget(trial)
        if budget is not None:  # Shown by report, load_run and TensorBoard.
            trial.metrics.setdefault("budget", budget)
        trial.error, trial.traceback = outcome.error, outcome.traceback
        trial.started, trial.duration = outcome.started, outcome.duration
        trial.worker = outcome.worker or trial.worker
        if pruned:
            feedback = pruned_feedback(trial, self.options.pruned_reward)
        else:
            feedback = trial.reward if completed else self.options.failure_reward
        proposal = self.algorithm.outstanding_proposal(trial.id)
        if proposal is None:
            raise RuntimeError(f"trial {trial.id} ended but its proposal is not outstanding")
        self._save_weights(trial, outcome)  # Before the end record: a kept trial has them.
        self.consistent = False
        vector = None
        if feedback is not None and trial.status is TrialStatus.COMPLETED:
            vector = objective_vector(self.options.objectives, trial.metrics)
        self.run_storage.append(end_record(trial, feedback, objectives=vector), durable=True)
        if vector is None or not self.algorithm.multi_objective:  # The plain call otherwise.
            self.algorithm.feedback(proposal, feedback)
        else:
            self.algorithm.feedback(proposal, feedback, objectives=vector)
        self.consistent = True
        self.pruning.finish(trial)
        self.finished[trial.id] = trial
        self.finished_order.append(trial)
        self._prune_weights()
        self.context.trials.append(trial)
        self._checkpoint()
        callbacks("on_trial_end", trial, self.context)
        self._count_failure(trial)

    def _on_report(self, report: Report, pruned: bool) -> None:
        trial = self.active.get(report.trial_id)
        if trial is not None:
            self.callbacks("on_trial_report", trial, report, pruned, self.context)

    # ------------------------------------------------------------------ weights

    def _weights_threshold(self) -> float | None:
        """The reward a trial must reach for its worker to send its weights back."""
        return weights_threshold(self.finished.values(), self.options.keep_weights)

    def _save_weights(self, trial: Trial, outcome: Outcome) -> None:
        if self.options.run_dir is None or trial.status is not TrialStatus.COMPLETED:
            return
        if outcome.weights is not None:
            save_weights(self.options.run_dir, trial.id, outcome.weights)
        elif outcome.weights_error is not None and not self.weights_warned:
            self.weights_warned = True
            warnings.warn(
                f"trial {trial.id}'s weights cannot be kept: {outcome.weights_error} (warned "
                "once per session)",
                RuntimeWarning,
                stacklevel=2,
            )

    def _prune_weights(self) -> None:
        keep = self.options.keep_weights
        if self.options.run_dir is not None and keep is not None and keep != "all":
            prune_weights(self.options.run_dir, kept_trial_ids(self.finished.values(), keep))

    def _count_failure(self, trial: Trial) -> None:
        limit = self.options.max_consecutive_failures
        if trial.status is not TrialStatus.FAILED:  # Completed or pruned: it ran.
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
        if is_stateful(self.evaluate) and self.options.run_dir is not None:
            self.run_storage.save_evaluator_state(self.evaluate.state_dict())  # type: ignore[attr-defined]
        self.last_checkpoint = now

    def _result(self) -> SearchResult:
        return SearchResult(
            trials=sorted(self.finished.values(), key=lambda t: t.id),
            codec=self.codec,
            run_dir=self.options.run_dir,
            algorithm=self.algorithm.name,
            objectives=None
            if self.options.objectives is None
            else self.options.objectives.directions,
        )
