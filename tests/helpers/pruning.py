"""Importable helpers for the pruning tests (worker processes unpickle them by reference).

Run as a module, it is the driver of the pruning SIGKILL test:
``python -m tests.helpers.pruning RUN_DIR NUM_TRIALS WORKERS``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import symbolic_nas as sn

STEPS = 4


def curve_space() -> dict[str, Any]:
    """4^4 architectures whose learning curves differ in rate (see :func:`curve`)."""
    return {f"d{i}": sn.oneof([0, 1, 2, 3]) for i in range(4)}


def curve(tokens: list[int], step: int) -> float:
    """A deterministic learning curve: rising with the step, faster for larger tokens."""
    rate = sum((i + 1) * t for i, t in enumerate(tokens)) / 30.0
    return round(rate * step / STEPS, 6)


@sn.evaluator(input="tokens")
def reporting_reward(tokens: list[int]) -> dict[str, Any]:
    """Reports :func:`curve` at steps 1..STEPS (with a metric), returns the last value."""
    for step in range(1, STEPS + 1):
        sn.report(step, curve(tokens, step), half=curve(tokens, step) / 2)
    return {"reward": curve(tokens, STEPS), "steps": STEPS}


@sn.evaluator(input="tokens")
def slow_reporting_reward(tokens: list[int]) -> dict[str, Any]:
    """Like :func:`reporting_reward`, 15 ms a step (the driver-kill test needs time)."""
    for step in range(1, STEPS + 1):
        time.sleep(0.015)
        sn.report(step, curve(tokens, step))
    return {"reward": curve(tokens, STEPS)}


@sn.evaluator(input="tokens")
def catching_reward(tokens: list[int]) -> float:
    """Catches TrialPruned and returns anyway (the trial still ends pruned)."""
    try:
        for step in range(1, STEPS + 1):
            sn.report(step, curve(tokens, step))
    except sn.TrialPruned:
        return 123.0
    return curve(tokens, STEPS)


def asha() -> sn.pruners.ASHAPruner:
    return sn.pruners.ASHAPruner(reduction_factor=2, min_resource=1, max_resource=STEPS)


def run_driver(run_dir: str, num_trials: int, workers: int) -> sn.SearchResult:
    """The driver of the pruning SIGKILL test (resumes whatever is in ``run_dir``)."""
    return sn.search(
        curve_space(),
        slow_reporting_reward,
        algorithm="random",
        num_trials=num_trials,
        workers=workers,
        run_dir=run_dir,
        resume=True,
        seed=0,
        pruner=asha(),
        tensorboard=False,
        progress=False,
        checkpoint_interval=0.1,
    )


if __name__ == "__main__":
    from tests.helpers.pruning import run_driver as run_driver_by_name

    run_driver_by_name(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
