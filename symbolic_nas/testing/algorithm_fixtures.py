"""What the algorithm contract drives algorithms on: test spaces and a toy objective."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, ClassVar

import pyglove as pg

import symbolic_nas as sn
from symbolic_nas.validation import Interval, validate_params

__all__ = ["ToyObjective", "algorithm_test_spaces"]


def algorithm_test_spaces() -> dict[str, Any]:
    """The spaces the contract drives algorithms on (fresh objects per call).

    Example:
        >>> from symbolic_nas.testing import algorithm_test_spaces
        >>> sorted(algorithm_test_spaces())
        ['anchor', 'categorical', 'conditional', 'float', 'picks', 'skip']
    """
    return {
        "categorical": {
            "kernel": sn.oneof([1, 3, 5]),
            "act": sn.oneof(["relu", "gelu"]),
            "depth": sn.intv(0, 4),
        },
        "conditional": {
            "block": sn.oneof(
                [
                    {
                        "op": "conv",
                        "kernel": sn.oneof([1, 3, 5]),
                        "inner": sn.oneof([{"dilation": sn.oneof([1, 2])}, "none"]),
                    },
                    {"op": "pool", "size": sn.oneof([2, 3])},
                    "identity",
                ]
            ),
            "width": sn.oneof([16, 32]),
        },
        "float": {
            "lr": sn.floatv(1e-4, 1e-1, scale="log"),
            "dropout": sn.floatv(0.0, 0.5, hints={"bins": 5}),
            "kernel": sn.oneof([3, 5]),
        },
        "picks": {
            "distinct": sn.manyof(2, ["a", "b", "c", "d"]),
            "sorted": sn.manyof(3, list(range(5)), sorted=True),
            "repeat": sn.manyof(2, ["x", "y", "z"], distinct=False),
            "perm": sn.permutate([1, 2, 3]),
            "nested": sn.manyof(2, [pg.Dict(x=sn.oneof([1, 2])), 7, 8]),
        },
        "anchor": {
            "inputs": sn.manyof(2, [0, 1, 2, 3], sorted=True, hints={"anchor": 4}),
            "op": sn.oneof(["conv", "pool"]),
        },
        "skip": {
            f"layer{i}": {
                "op": sn.oneof(["conv", "pool"]),
                "inputs": sn.subset(list(range(i)), anchor=i),
            }
            for i in range(1, 5)
        },
    }


class ToyObjective:
    """A seeded toy objective with a known optimum, for checking that algorithms learn.

    ``num_decisions`` categorical decisions of ``vocab_size`` tokens each; a
    seeded target token per decision. The reward is the mean over decisions of
    ``1 - |token - target| / (vocab_size - 1)``: graded, additive, 1.0 exactly at
    the target, and its mean under uniformly random tokens is known exactly
    (:attr:`random_mean`).

    Args:
        seed: Seed of the target.
        num_decisions: Number of decisions.
        vocab_size: Tokens per decision (at least 2).

    Example:
        >>> from symbolic_nas.testing import ToyObjective
        >>> toy = ToyObjective(seed=0, num_decisions=3, vocab_size=4)
        >>> toy(toy.optimum_tokens)
        1.0
        >>> toy.optimum_tokens, round(toy.random_mean, 4)
        ([2, 0, 3], 0.5556)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "seed": [Interval(int, None, None)],
        "num_decisions": [Interval(int, 1, None)],
        "vocab_size": [Interval(int, 2, None)],
    }

    def __init__(self, *, seed: int = 0, num_decisions: int = 4, vocab_size: int = 8):
        validate_params(
            self._parameter_constraints,
            {"seed": seed, "num_decisions": num_decisions, "vocab_size": vocab_size},
        )
        # Seeded apart from the algorithms' own seeds (random search with seed s must not
        # start at the optimum of the toy with seed s).
        rng = random.Random(f"symbolic_nas.testing.ToyObjective/{seed}")
        self.seed = seed
        self.num_decisions = num_decisions
        self.vocab_size = vocab_size
        self.optimum_tokens = [rng.randrange(vocab_size) for _ in range(num_decisions)]
        self.optimum = 1.0
        self.codec = sn.encode([sn.oneof(list(range(vocab_size))) for _ in range(num_decisions)])
        span = vocab_size - 1
        self.random_mean = (
            sum(
                sum(1 - abs(t - target) / span for t in range(vocab_size)) / vocab_size
                for target in self.optimum_tokens
            )
            / num_decisions
        )

    def __call__(self, tokens: Sequence[int]) -> float:
        span = self.vocab_size - 1
        return (
            sum(1 - abs(t - target) / span for t, target in zip(tokens, self.optimum_tokens))
            / self.num_decisions
        )
