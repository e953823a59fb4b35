"""Tuner overhead: 1,000 trials of a trivial evaluator, journal and TensorBoard on.

The same algorithm with the same seed runs twice: as a bare loop (propose, evaluate,
feedback; nothing else) and through ``sn.search`` with a run directory (a journal
record per event, fsync'd at each trial's end and before each checkpoint; algorithm
checkpoints; TensorBoard logging), inline (one worker).
The difference is the tuner's overhead. Goal: 1,000 trials in <= 20 s.

Run: python benchmarks/tuner_overhead.py [--trials 1000] [--algorithms random reinforce]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import symbolic_nas as sn
from symbolic_nas import algorithms


def space() -> dict:
    """20 decisions of 4 choices each."""
    return {f"d{i}": sn.oneof(["a", "b", "c", "d"]) for i in range(20)}


@sn.evaluator(input="tokens")
def trivial(tokens: list[int]) -> float:
    return sum(tokens) / (3 * len(tokens))


def bare_loop(name: str, trials: int) -> float:
    codec = sn.encode(space())
    start = time.perf_counter()
    algorithm = algorithms.get(name, seed=0)
    algorithm.setup(codec, budget=trials)
    for _ in range(trials):
        proposal = algorithm.propose()
        algorithm.feedback(proposal, trivial(proposal.tokens))
    return time.perf_counter() - start


def tuner(name: str, trials: int, *, run_dir: bool, tensorboard: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = sn.search(
            space(),
            trivial,
            algorithm=name,
            num_trials=trials,
            seed=0,
            run_dir=f"{tmp}/run" if run_dir else None,
            tensorboard=tensorboard,
            progress=False,
        )
        elapsed = time.perf_counter() - start
    assert len(result.completed) == trials
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--algorithms", nargs="+", default=["random", "reinforce"])
    args = parser.parse_args()
    n = args.trials
    for name in args.algorithms:
        bare_loop(name, 20)  # Warm-up: first-use costs (lazy imports) are not overhead.
        bare = bare_loop(name, n)
        print(f"{name}, {n} trials:")
        print(f"  bare algorithm loop          {bare:7.2f} s  ({1e3 * bare / n:.2f} ms/trial)")
        for label, run_dir, tensorboard in (
            ("tuner, in memory", False, False),
            ("tuner, journal + checkpoints", True, False),
            ("tuner, journal + TensorBoard", True, True),
        ):
            seconds = tuner(name, n, run_dir=run_dir, tensorboard=tensorboard)
            overhead = 1e3 * (seconds - bare) / n
            print(
                f"  {label:28} {seconds:7.2f} s  ({seconds / bare:.1f}x the bare loop, "
                f"+{overhead:.2f} ms/trial){'  goal <= 20 s' if tensorboard else ''}",
                flush=True,
            )


if __name__ == "__main__":
    main()
