"""Per-trial overhead of every registered algorithm, against PyGlove's Random in the same run.

For each space (6, 30 and 100 decisions) it measures milliseconds per
``propose()`` + ``feedback()`` of every algorithm in ``algorithms.available()``,
amortised over a run of trials (setup excluded, a warm-up run first), and
milliseconds per trial of ``pg.sample(space, pg.geno.Random(seed))`` with
feedback, and prints the ratios. The reward is a fixed random additive function
of the decision values, so learning algorithms learn and update as in a search.

Spaces:
* 6 decisions: six edges with five operations (NAS-Bench-201's shape).
* 30 decisions: 6 layers, each a conditional choice between a convolution
  (filters, kernel) and a pooling layer (size), plus an activation (~21 active).
* 100 decisions: the same with 20 layers.

Run: python benchmarks/overhead.py [--trials 300] [--pg-trials 30] [--repeats 3]
Goal (issue #3): ``reinforce`` <= 1 ms per trial on the 30-decision space, one torch thread.
"""

from __future__ import annotations

import argparse
import random
import time
import zlib
from typing import Any

import pyglove as pg
import torch

import symbolic_nas as sn
from symbolic_nas import algorithms


def nb201_like() -> Any:
    ops = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
    return pg.List([sn.oneof(ops) for _ in range(6)])


def layered(num_layers: int) -> Any:
    return pg.List(
        [
            pg.Dict(
                op=sn.oneof(
                    [
                        pg.Dict(
                            conv=pg.Dict(
                                filters=sn.oneof([8, 16, 24, 32]), kernel=sn.oneof([1, 3, 5, 7])
                            )
                        ),
                        pg.Dict(pool=sn.oneof([3, 5])),
                    ]
                ),
                act=sn.oneof(["relu", "tanh"]),
            )
            for _ in range(num_layers)
        ]
    )


SPACES = {6: nb201_like, 30: lambda: layered(6), 100: lambda: layered(20)}


def make_reward(codec: sn.Codec):
    """A fixed additive objective: one random weight per (decision, token)."""
    rng = random.Random(0)
    weights = [[rng.random() for _ in range(d.vocab_size)] for d in codec.decisions]

    def reward(tokens: list[int]) -> float:
        return sum(weights[d][t] for d, t in zip(codec.trace(tokens), tokens)) / len(tokens)

    return reward


#: Extra rows: registered algorithms with non-default hyperparameters.
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "reinforce m=64": ("reinforce", {"batch_size": 64, "sample_batch": 64}),
    # The controller alone: no re-sampling of architectures already rewarded.
    "reinforce no memory": ("reinforce", {"reward_memory": False}),
}


def time_algorithm(
    name: str, codec: sn.Codec, trials: int, seed: int, kwargs: dict[str, Any] | None = None
) -> float:
    """Milliseconds per propose + feedback, amortised over ``trials`` (after setup)."""
    reward = make_reward(codec)
    algo = algorithms.get(name, seed=seed, **(kwargs or {}))
    algo.setup(codec, budget=trials)
    start = time.perf_counter()
    for _ in range(trials):
        p = algo.propose()
        algo.feedback(p, reward(p.tokens))
    return (time.perf_counter() - start) / trials * 1e3


def time_pyglove_random(space: Any, trials: int, seed: int) -> float:
    """Milliseconds per trial of ``pg.sample`` with ``pg.geno.Random`` (and feedback)."""
    start = time.perf_counter()
    for i, (_, feedback) in enumerate(
        pg.sample(space, pg.geno.Random(seed=seed), num_examples=trials)
    ):
        feedback(float(zlib.crc32(str(i).encode()) % 100) / 100)
    return (time.perf_counter() - start) / trials * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=300, help="trials per algorithm run")
    parser.add_argument("--pg-trials", type=int, default=30, help="trials of pg.sample Random")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (min is kept)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    names = algorithms.available()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread; algorithms: {names}")
    print(
        f"{args.trials} trials per run, best of {args.repeats} runs; ratio = pg Random / algorithm"
    )
    results: dict[tuple[str, int], float] = {}
    for size, make in SPACES.items():
        space = make()
        codec = sn.encode(space)
        assert codec.num_decisions == size, (size, codec.num_decisions)
        for name in names:  # warm-up: lazy imports and first-call costs
            time_algorithm(name, codec, 20, seed=99)
        baseline = min(
            time_pyglove_random(space, args.pg_trials, seed=r) for r in range(args.repeats)
        )
        print(f"\n{size} decisions: pg.sample + pg.geno.Random {baseline:9.3f} ms/trial")
        rows = [(name, name, {}) for name in names]
        rows += [(label, name, kw) for label, (name, kw) in VARIANTS.items() if name in names]
        for label, name, kwargs in rows:
            ms = min(
                time_algorithm(name, codec, args.trials, seed=r, kwargs=kwargs)
                for r in range(args.repeats)
            )
            results[(label, size)] = ms
            print(f"  {label:19s} {ms:9.3f} ms/trial   {baseline / ms:8.1f}x faster than pg Random")
    for label in ("reinforce", *VARIANTS):
        if (label, 30) in results:
            ms = results[(label, 30)]
            verdict = "met" if ms <= 1.0 else "missed"
            print(f"goal {label} <= 1 ms/trial on 30 decisions: {ms:.3f} ms ({verdict})")


if __name__ == "__main__":
    main()
