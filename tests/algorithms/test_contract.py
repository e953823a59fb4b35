"""The public algorithm contract (symbolic_nas.testing) over every registered algorithm,
and proof that each check catches the bug it is meant to catch."""

from __future__ import annotations

import random
from typing import Any

import pytest

import symbolic_nas as sn
from symbolic_nas import algorithms
from symbolic_nas.algorithms.random_search import RandomSearch
from symbolic_nas.testing import (
    ToyObjective,
    algorithm_test_spaces,
    check_algorithm,
    check_async_feedback,
    check_beats_random,
    check_failure_policy,
    check_reproducible,
    check_state_dict,
    check_valid_proposals,
)

CHECKS = [
    check_valid_proposals,
    check_reproducible,
    check_async_feedback,
    check_failure_policy,
    check_state_dict,
]


#: Algorithms whose optional dependency must be installed for them to run.
OPTIONAL = {"optuna": "optuna", "tpe": "optuna"}


def _needs(name: str) -> None:
    if name in OPTIONAL:
        pytest.importorskip(OPTIONAL[name])


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__ for c in CHECKS])
@pytest.mark.parametrize("name", algorithms.available())
def test_registered_algorithm_passes(name, check):
    _needs(name)
    check(lambda seed: algorithms.get(name, seed=seed))


@pytest.mark.parametrize("name", [n for n in algorithms.available() if algorithms.get(n).learns])
def test_learning_algorithm_beats_random_search(name):
    _needs(name)
    check_beats_random(name)


def test_every_registered_algorithm_is_covered():
    names = {"random", "evolution", "q_learning", "reinforce", "ppo", "optuna", "tpe"}
    names |= {"local_search", "bananas"}
    assert names <= set(algorithms.available())  # so the contract runs over all nine
    assert not algorithms.get("random").learns
    assert all(algorithms.get(n).learns for n in names - {"random"})


# ---------------------------------------------------------------------- the checks can fail


class _Counting(RandomSearch):
    """Random search whose state holds a counter (for the state_dict checks)."""

    def _setup(self) -> None:
        self.counts = [0]

    def _feedback(self, proposal, reward) -> None:
        self.counts[0] += 1

    def _state_dict(self) -> dict[str, Any]:
        return {"counts": list(self.counts)}

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        self.counts = list(state["counts"])


class _Invalid(RandomSearch):
    def _propose(self):
        tokens = self.codec.random_tokens(self.rng)
        tokens[-1] = int(self.codec.vocab_sizes.max())  # out of every vocabulary
        return tokens, None


class _Unseeded(RandomSearch):
    def _propose(self):
        return self.codec.random_tokens(random.Random()), None


class _NoReset(RandomSearch):
    """Keeps its RNG across setup() calls."""

    def setup(self, codec, budget=None) -> None:
        rng = getattr(self, "_kept", None)
        super().setup(codec, budget)
        self._kept = self.rng = rng or self.rng


class _CrashesOnNan(RandomSearch):
    def _failed(self, proposal) -> None:
        raise ValueError("reward is NaN")


class _Blocks(RandomSearch):
    def _propose(self):
        if len(self.outstanding) >= 20:
            raise RuntimeError("waiting for feedback")
        return super()._propose()


class _Aliased(_Counting):
    def _state_dict(self) -> dict[str, Any]:
        return {"counts": self.counts}  # not a copy


class _Forgets(_Counting):
    def _state_dict(self) -> dict[str, Any]:
        return {"counts": [0], "rng": self.rng}  # a Random: not loadable with weights_only


class _Drifts(RandomSearch):
    """Proposes from a second RNG that its state_dict does not save."""

    def _setup(self) -> None:
        self.other = random.Random(self.seed)

    def _feedback(self, proposal, reward) -> None:
        self.other.random()

    def _propose(self):
        return self.codec.random_tokens(self.other), None


class _Learner(RandomSearch):
    learns = True


@pytest.mark.parametrize(
    ("cls", "check", "message"),
    [
        (_Invalid, check_valid_proposals, r"proposal 0 is not valid .*space 'categorical'"),
        (_Unseeded, check_reproducible, r"seed 0 must give the same proposals"),
        (_NoReset, check_reproducible, r"the same instance after setup\(\) differs"),
        (_CrashesOnNan, check_failure_policy, r"feedback\(proposal 0, None\) raised ValueError"),
        (_Blocks, check_failure_policy, r"propose\(\) raised RuntimeError: waiting for feedback"),
        (_Aliased, check_state_dict, r"must be a snapshot"),
        (_Forgets, check_state_dict, r"must load with torch.load\(weights_only=True\)"),
        (_Drifts, check_state_dict, r"must make the same proposals before answering"),
        (_Learner, check_beats_random, r"must beat random search's 0\.\d+ by 0\.035"),
    ],
)
def test_each_check_catches_its_bug(cls, check, message):
    with pytest.raises(AssertionError, match=message):
        check(lambda seed: cls(seed=seed))


def test_a_correct_algorithm_with_state_passes_everything():
    check_algorithm(lambda seed: _Counting(seed=seed))


def test_check_algorithm_runs_the_learning_check_only_for_learners(monkeypatch):
    import symbolic_nas.testing.algorithms as contract

    ran = []
    for check in [*CHECKS, check_beats_random]:
        monkeypatch.setattr(
            contract, check.__name__, lambda f, name=check.__name__: ran.append(name)
        )
    everything = [c.__name__ for c in CHECKS]
    check_algorithm("random")  # learns is False: no learning check
    assert ran == everything
    ran.clear()
    check_algorithm("random", learning=True)
    assert ran == [*everything, "check_beats_random"]
    ran.clear()
    check_algorithm(lambda seed: _Learner(seed=seed))
    assert ran == [*everything, "check_beats_random"]
    ran.clear()
    check_algorithm(lambda seed: _Learner(seed=seed), learning=False)
    assert ran == everything


def test_factory_errors_are_clear():
    with pytest.raises(TypeError, match=r"`factory` must be a registered algorithm name"):
        check_valid_proposals(3)
    with pytest.raises(AssertionError, match=r"must return a symbolic_nas Algorithm"):
        check_valid_proposals(lambda seed: object())
    with pytest.raises(ValueError, match=r"`algorithm` must be one of"):
        check_valid_proposals("no_such_algorithm")


def test_test_spaces_cover_every_kind_of_decision():
    kinds = set()
    for space in algorithm_test_spaces().values():
        codec = sn.encode(space)
        for d in codec.decisions:
            kinds.add(d.kind)
            if d.group is not None and d.kind == "categorical":
                kinds.add(("pick", d.distinct, d.sorted))
            if d.required is not None:
                kinds.add("anchor-manyof")
            if d.kind == "subset" and d.anchor is not None and d.required is None:
                kinds.add("skip-subset")
            if d.parent is not None:
                kinds.add("conditional")
    assert {
        "categorical",
        "float",
        "subset",
        "conditional",
        "anchor-manyof",
        "skip-subset",
    } <= kinds
    assert {("pick", True, False), ("pick", True, True), ("pick", False, False)} <= kinds


def test_toy_objective_has_a_known_optimum_and_random_mean():
    toy = ToyObjective(seed=3, num_decisions=3, vocab_size=5)
    assert toy(toy.optimum_tokens) == toy.optimum == 1.0
    every = [[a, b, c] for a in range(5) for b in range(5) for c in range(5)]
    assert max(toy(t) for t in every) == 1.0
    assert sum(toy(t) for t in every) / len(every) == pytest.approx(toy.random_mean)
    assert toy.optimum_tokens != ToyObjective(seed=4, num_decisions=3, vocab_size=5).optimum_tokens
    with pytest.raises(ValueError, match=r"`vocab_size` must be an int >= 2, but got 1"):
        ToyObjective(vocab_size=1)
