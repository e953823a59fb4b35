"""The facade: ``sn.search`` assembles the tuner and the review layer.

The tuner (:mod:`symbolic_nas.tuner`) runs the loop and never imports the review
layer; this function validates the options, builds the default callbacks
(TensorBoard logs in the run directory, the progress bar) and hands both to
:func:`symbolic_nas.tuner.loop.run`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from symbolic_nas import algorithms as _algorithms
from symbolic_nas.review.pareto_plot import ParetoPlotCallback
from symbolic_nas.review.progress import ProgressCallback
from symbolic_nas.review.tensorboard import TensorBoardCallback
from symbolic_nas.storage.rundir import TENSORBOARD
from symbolic_nas.storage.trial import SearchResult
from symbolic_nas.tuner.callbacks import Callback
from symbolic_nas.tuner.executors.local import Executor
from symbolic_nas.tuner.loop import run
from symbolic_nas.tuner.objectives import Scalarization
from symbolic_nas.tuner.options import SearchOptions
from symbolic_nas.tuner.pruners import Pruner

__all__ = ["search"]


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
    keep_weights: str | int | None = None,
    pruner: str | Pruner | None = None,
    pruned_reward: str | float | None = "last",
    objectives: Mapping[str, str] | None = None,
    scalarization: Scalarization | None = None,
    constraints: Mapping[str, float] | None = None,
    infeasible_reward: float | None = None,
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
    :mod:`symbolic_nas.storage.rundir`), plus TensorBoard logs under ``tensorboard/``.
    After any crash, the same call with ``resume=True`` continues: finished
    trials are kept, trials that were running are run again, and the algorithm
    is restored. ``resume=True`` on a missing or empty ``run_dir`` starts a new
    run; ``resume=False`` on a directory that is not empty raises.

    **Trained weights.** With ``keep_weights`` (and a ``run_dir``), the trained
    children's state dicts (weights only, on the CPU) are saved as
    ``weights/trial-<id>.pt`` in the run directory: ``"best"`` keeps the best trial
    so far (a superseded file is deleted), an int ``k`` the best ``k``, ``"all"``
    every completed trial. The worker that trained a child sends its state dict
    back with the outcome (only when the reward makes it a kept trial) and the
    driver writes it, so this works with every executor, Ray included.
    ``result.best.load_model(space)`` then returns the trained module. The
    evaluator must take the built model (the default), and the model is saved
    as the evaluator left it after training.

    **Early stopping.** An evaluator may report intermediate values with
    ``sn.report(step, value, **metrics)`` (``sn.Trainer`` reports validation accuracy
    after every epoch). With a ``pruner`` (``"median"``, ``"asha"``, ``"hyperband"`` or
    a :class:`~symbolic_nas.tuner.pruners.Pruner`), a report may stop the trial: it
    ends with status ``pruned``, keeps its last report as metrics, its worker takes
    the next trial at once, and the algorithm is told ``pruned_reward``. Reports are
    journaled and shown per trial in TensorBoard; on resume the pruner is rebuilt
    from the journal (see :mod:`symbolic_nas.tuner.pruning`). Without pruning, a
    multi-fidelity algorithm (``algorithm="successive_halving"``) gives each trial a
    budget (``sn.current_trial().budget``, its ``budget`` metric) and promotes the best
    architectures to larger ones as new trials; it cannot be combined with a ``pruner``.

    **Several objectives.** With ``objectives={"accuracy": "max", "latency": "min"}``
    the evaluator returns a dict holding those metrics and the tuner makes the
    reward: the first objective (negated when minimised) by default, or
    ``scalarization=sn.MnasNetReward(target=T)`` (``acc × (lat/T) ** w``, Tan et
    al., CVPR 2019) or ``sn.TuNASReward(target=T, beta=β)`` (``acc + β·|lat/T − 1|``,
    Bender et al., CVPR 2020). ``constraints={"latency": T}`` makes a trial above
    ``T`` infeasible (``metrics["feasible"] = False``): the algorithm is told
    ``infeasible_reward`` (default 0.0). A multi-objective algorithm (``"nsga2"``)
    learns from the objective vector of the feasible trials instead.
    ``result.pareto_front()`` lists the non-dominated trials. An objective the
    evaluator does not return stops the search at the first trial
    (:class:`~symbolic_nas.tuner.objectives.ObjectiveMissingError`). Measurements
    for the metrics: :func:`symbolic_nas.measured` (parameters, FLOPs, latency, in
    the worker) and :class:`symbolic_nas.LatencyTable` (a CSV of costs).

    Args:
        space: The search space (a symbolic value with placeholders, or ``sn.annotate``'s).
        evaluate: Called with the built model (or tokens / DNA, see ``sn.evaluator``);
            returns the reward (a float) or a dict with a ``"reward"`` key whose
            other JSON-able entries are kept as metrics. ``sn.Trainer()`` is one.
        algorithm: A registered algorithm name (built with ``seed``) or an instance.
        num_trials: Trials to finish (completed or failed), resumed ones included.
        workers: Parallel trials, or ``"auto"`` (one per GPU, else one per CPU core).
        executor: ``"auto"``, ``"inline"``, ``"process"``, ``"ray"``, or an
            :class:`~symbolic_nas.tuner.executors.local.Executor` instance (started and closed
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
        callbacks: Extra :class:`~symbolic_nas.tuner.callbacks.Callback` objects.
        tensorboard: Log to ``<run_dir>/tensorboard`` (only with a ``run_dir``).
        progress: Show a progress bar; None: when stderr is a terminal.
        checkpoint_interval: Minimum seconds between algorithm checkpoints (0: after
            every event); one is always written when a session ends.
        metadata: JSON-able data stored in the run's config (the CLI keeps what it
            needs to resume there).
        keep_weights: Keep trained weights in ``run_dir``: None (not at all), ``"best"``,
            ``"all"``, or the number of best trials to keep.
        pruner: Stops poor trials early from their reports: a registered name
            (``"median"``, ``"asha"``, ``"hyperband"``, with default settings) or an
            instance (e.g. ``sn.pruners.ASHAPruner(reduction_factor=3, min_resource=1)``);
            None: trials always run to the end.
        pruned_reward: What the algorithm is told for a pruned trial: ``"last"`` (its
            last reported value), None (no learning signal) or a finite penalty.
        objectives: ``{metric: "max" | "min"}`` to trade off, or None (the reward alone).
        scalarization: How the reward is made from the objectives (None: the first one).
        constraints: ``{objective: bound}``: at most ``bound`` for a minimised
            objective, at least for a maximised one.
        infeasible_reward: What the algorithm is told for a trial that breaks a
            constraint (None: 0.0).

    Returns:
        The :class:`~symbolic_nas.storage.trial.SearchResult`: every finished trial, by id.

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
        keep_weights=keep_weights,
        pruner=pruner,
        pruned_reward=pruned_reward,
        objectives=objectives,
        scalarization=scalarization,
        constraints=constraints,
        infeasible_reward=infeasible_reward,
    )
    return run(space, evaluate, options, default_callbacks=_default_callbacks)


def _default_callbacks(options: SearchOptions) -> list[Callback]:
    callbacks: list[Callback] = []
    if options.run_dir is not None and options.tensorboard:
        callbacks.append(TensorBoardCallback(os.path.join(options.run_dir, TENSORBOARD)))
    if options.run_dir is not None and options.tensorboard and options.objectives is not None:
        callbacks.append(ParetoPlotCallback(os.path.join(options.run_dir, TENSORBOARD)))
    if options.progress:
        callbacks.append(ProgressCallback(total=options.num_trials, disable=False))
    return callbacks
