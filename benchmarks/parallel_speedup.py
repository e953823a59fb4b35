"""Speed-up of 2 worker processes over 1 on real MNIST children (CPU).

The same children (the MNIST example's space and evaluator, random search with
seed 0, so both runs train the same architectures) are trained by one worker
process, then by two, each with one torch thread. Goal: >= 1.6x.
Throughput is given over the trials' span (first start to last end) and over the
whole call (worker start-up included).

Run: python benchmarks/parallel_speedup.py [--trials 24]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

sys.path.append(str(pathlib.Path(__file__).resolve().parents[1]))  # For `examples`.

import symbolic_nas as sn
from examples import mnist_search


def run(workers: int, trials: int) -> tuple[float, float, float]:
    start = time.perf_counter()
    result = sn.search(
        mnist_search.space(),
        mnist_search.Evaluate(),
        algorithm="random",
        num_trials=trials,
        executor="process",
        workers=workers,
        seed=0,
        progress=False,
    )
    wall = time.perf_counter() - start
    assert not result.failed, [t.error for t in result.failed]
    first = min(t.started for t in result.trials)
    last = max(t.started + t.duration for t in result.trials)
    mean_accuracy = sum(t.metrics["accuracy"] for t in result.trials) / trials
    return trials / (last - first), trials / wall, mean_accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=24)
    args = parser.parse_args()
    one_span, one_wall, one_acc = run(1, args.trials)
    two_span, two_wall, two_acc = run(2, args.trials)
    print(f"{args.trials} MNIST children, random search, seed 0")
    print(
        f"1 worker:  {one_span:.3f} trials/s ({one_wall:.3f} with start-up), mean acc {one_acc:.4f}"
    )
    print(
        f"2 workers: {two_span:.3f} trials/s ({two_wall:.3f} with start-up), mean acc {two_acc:.4f}"
    )
    print(
        f"speed-up: {two_span / one_span:.2f}x ({two_wall / one_wall:.2f}x with start-up)"
        "  (goal >= 1.6x)"
    )


if __name__ == "__main__":
    main()
