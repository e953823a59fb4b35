"""A small fake search that drives callbacks the way the tuner does (for the TensorBoard
and progress-bar tests): a real codec, the real random algorithm, made-up rewards."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import symbolic_nas as sn
from symbolic_nas import algorithms
from symbolic_nas.algorithms.random_search import RandomSearch
from symbolic_nas.space.codec import Codec
from symbolic_nas.storage.trial import SearchResult, Trial, TrialStatus
from symbolic_nas.tuner.callbacks import Callback, SearchContext


def conditional_space() -> dict[str, Any]:
    """A space with a conditional branch (inactive decisions), a float and a subset."""
    return {
        "op": sn.oneof(
            [
                {"kind": "conv", "kernel": sn.oneof([3, 5, 7])},
                {"kind": "mlp", "width": sn.intv(1, 4)},
            ]
        ),
        "lr": sn.floatv(1e-4, 1e-1, scale="log", hints={"bins": 4}),
        "skips": sn.subset(["a", "b", "c"], anchor="x"),
        "act": sn.oneof(["relu", "gelu"]),
    }


class StatsRandomSearch(RandomSearch):
    """Random search that reports statistics like a learning algorithm would."""

    def stats(self) -> dict[str, float]:
        return {"entropy": 1.0 / (1 + self.num_feedback), "epsilon": 0.5, "skip_rate": 0.25}


def reward_of(tokens: Sequence[int]) -> float:
    """A deterministic made-up reward in (0, 1)."""
    return (sum((i + 1) * t for i, t in enumerate(tokens)) % 17 + 1) / 18


def fake_search(
    callbacks: Sequence[Callback],
    *,
    codec: Codec,
    num_trials: int,
    algorithm: Any = None,
    previous: Sequence[Trial] = (),
    fail_every: int = 4,
    seed: int = 0,
) -> SearchContext:
    """Runs ``num_trials`` trials in all (``previous`` ones included, as on resume).

    Every ``fail_every``-th trial fails. Returns the context (its ``trials`` hold
    every finished trial).
    """
    algorithm = algorithm if algorithm is not None else algorithms.get("random", seed=seed)
    algorithm.setup(codec, budget=num_trials)
    context = SearchContext(
        codec=codec,
        algorithm=algorithm,
        num_trials=num_trials,
        trials=list(previous),
        start_time=time.time(),
        resumed=bool(previous),
    )
    for callback in callbacks:
        callback.on_search_start(context)
    for trial_id in range(len(previous), num_trials):
        proposal = algorithm.propose()
        trial = Trial(trial_id, proposal.tokens, codec=codec, started=time.time(), attempts=1)
        for callback in callbacks:
            callback.on_trial_start(trial, context)
        if fail_every and trial_id % fail_every == fail_every - 1:
            trial.status = TrialStatus.FAILED
            trial.error = "Traceback ...\nRuntimeError: out of memory"
            algorithm.feedback(proposal, None)
        else:
            reward = reward_of(trial.tokens)
            trial.status, trial.reward = TrialStatus.COMPLETED, reward
            trial.metrics = {"accuracy": reward, "params": 1000 + trial_id, "note": "ok"}
            algorithm.feedback(proposal, reward)
        trial.duration = 0.001
        context.trials.append(trial)
        for callback in callbacks:
            callback.on_trial_end(trial, context)
    result = SearchResult(list(context.trials), codec=codec, algorithm=algorithm.name)
    for callback in callbacks:
        callback.on_search_end(result, context)
    return context
