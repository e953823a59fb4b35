"""``bananas`` and the shared predictor (``algorithms/_predictor.py``)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

import symbolic_nas as sn
from symbolic_nas import algorithms, spaces
from symbolic_nas.algorithms._predictor import EnsemblePredictor, OneHotEncoder, Screen, acquire
from symbolic_nas.testing import algorithm_test_spaces
from symbolic_nas.validation import InvalidParameterError


def test_one_hot_encoding_masks_inactive_decisions():
    codec = sn.encode(algorithm_test_spaces()["conditional"])
    encoder = OneHotEncoder(codec)
    rng = random.Random(0)
    for _ in range(20):
        tokens = codec.random_tokens(rng)
        row = encoder.encode([tokens])[0]
        assert row.sum() == len(tokens)  # one entry per active decision, none for the rest
        active = set(codec.trace(tokens))
        for d in range(codec.num_decisions):
            block = row[encoder.offsets[d] : encoder.offsets[d] + codec.vocab_sizes[d]]
            assert block.sum() == (1 if d in active else 0)


def test_predictor_learns_an_additive_function_and_is_deterministic():
    rng = np.random.default_rng(0)
    x = (rng.random((80, 20)) < 0.3).astype(np.float32)
    w = rng.normal(size=20)
    y = x @ w
    test = (rng.random((200, 20)) < 0.3).astype(np.float32)
    mean, std = EnsemblePredictor(seed=3).fit(x, y).predict(test)
    assert np.corrcoef(mean, test @ w)[0, 1] > 0.9
    assert (std >= 0).all() and std.shape == (200,)
    again, _ = EnsemblePredictor(seed=3).fit(x, y).predict(test)
    assert np.array_equal(mean, again)  # same seed, same history: same predictions


def test_predictor_errors_name_the_rule_and_the_value():
    with pytest.raises(RuntimeError, match="must be fitted on a history of rewards"):
        EnsemblePredictor().predict(np.zeros((1, 3), dtype=np.float32))
    with pytest.raises(InvalidParameterError, match="`rewards` must be a history of at least 2"):
        EnsemblePredictor().fit(np.zeros((0, 3), dtype=np.float32), [])
    with pytest.raises(InvalidParameterError, match="`ensemble_size` must be an int >= 1"):
        EnsemblePredictor(ensemble_size=0)
    with pytest.raises(InvalidParameterError, match="`acquisition` must be one of"):
        acquire(np.zeros(2), np.zeros(2), "ucb", random.Random(0))
    codec = sn.encode({"a": sn.oneof([1, 2])})
    with pytest.raises(InvalidParameterError, match="`rewards` must be a history of at least 2"):
        Screen(codec).pick([], [[0]], "its", random.Random(0))


def test_screen_refits_only_when_the_history_grew():
    codec = sn.encode([sn.oneof([0, 1, 2]) for _ in range(3)])
    screen = Screen(codec, seed=0)
    history = [([a, b, 0], float(a + b)) for a in range(3) for b in range(3)]
    screen.pick(history, [[0, 0, 1]], "mean", random.Random(0))
    screen.pick(history, [[0, 1, 1]], "mean", random.Random(0))
    assert screen.fits == 1
    screen.pick([*history, ([2, 2, 2], 4.0)], [[0, 1, 1]], "mean", random.Random(0))
    assert screen.fits == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_init": 1}, "`num_init` must be an int >= 2"),
        ({"num_candidates": 0}, "`num_candidates` must be an int >= 1"),
        ({"acquisition": "ucb"}, "`acquisition` must be"),
        ({"learning_rate": 0}, "`learning_rate` must be"),
    ],
)
def test_hyperparameters_are_validated(kwargs, message):
    with pytest.raises(InvalidParameterError, match=message):
        algorithms.get("bananas", **kwargs)


def test_guided_proposals_are_new_and_beat_random_on_an_additive_objective():
    codec = sn.encode([sn.oneof(list(range(5))) for _ in range(6)])
    algo = algorithms.get("bananas", num_init=10, patience=None, seed=1)  # no restarts
    algo.setup(codec, budget=60)
    seen, rewards = set(), []
    for _ in range(60):
        p = algo.propose()
        assert tuple(p.tokens) not in seen
        seen.add(tuple(p.tokens))
        rewards.append(float(sum(p.tokens)))
        algo.feedback(p, rewards[-1])
        assert p.meta["guided"] == (p.id >= 10)
    assert np.mean(rewards[-20:]) > 18  # random search averages 12
    # A fit at every new reward while 5 % of the history is at most one, then sparser.
    fitted, fits = -1, 0
    for n in range(10, 60):
        if fitted < 0 or n - fitted >= max(1, math.ceil(0.05 * fitted)):
            fitted, fits = n, fits + 1
    assert algo.stats()["fits"] == fits == 28


def test_a_climb_that_stops_improving_restarts_from_a_random_architecture():
    codec = sn.encode([sn.oneof(list(range(5))) for _ in range(6)])
    algo = algorithms.get("bananas", num_init=4, patience=3, steps=10, seed=0)
    algo.setup(codec)
    guided = []
    for i in range(12):
        p = algo.propose()
        guided.append(p.meta["guided"])
        algo.feedback(p, 1.0 if i == 0 else 0.0)  # nothing ever beats the first
    # 4 random starts; the climb's best (the first) is not beaten by rewards 2, 3, 4:
    # restart, a random start, 3 guided proposals, restart, ...
    assert guided == [False] * 4 + [False, True, True, True, False, True, True, True]
    assert algo.stats()["restarts"] == 3


def test_many_outstanding_proposals_are_distinct_and_failures_are_not_repeated():
    codec = sn.encode([sn.oneof(list(range(4))) for _ in range(5)])
    algo = algorithms.get("bananas", num_init=4, seed=0)
    algo.setup(codec)
    first = [algo.propose() for _ in range(8)]
    for p in first:
        algo.feedback(p, None if p.id == 0 else float(sum(p.tokens)))
    batch = [algo.propose() for _ in range(16)]
    keys = [tuple(p.tokens) for p in first + batch]
    assert len(set(keys)) == len(keys)
    for p in reversed(batch):
        algo.feedback(p, float(sum(p.tokens)))


@pytest.mark.slow
@pytest.mark.parametrize("space", ["zoph_le_cnn", "metaqnn"])
def test_runs_a_few_hundred_trials_on_conditional_spaces(space):
    codec = sn.encode(spaces.get(space))
    algo = algorithms.get("bananas", seed=0, steps=20, refit_every=5)
    algo.setup(codec, budget=200)
    batch = []
    for i in range(200):
        batch.append(algo.propose())
        if len(batch) == 4 or i == 199:  # four workers, answered out of order
            for p in batch[::-1]:
                codec.validate(p.tokens)
                algo.feedback(p, None if p.id % 40 == 0 else float(sum(p.tokens) % 17))
            batch = []
    assert algo.num_feedback == 200 and algo.num_failed == 5
    assert algo.best is not None and algo.best[1] >= 14


def test_resume_replays_exactly():
    codec = sn.encode(spaces.get("zoph_le_cnn"))

    def run(split: int | None) -> list[list[int]]:
        algo = algorithms.get("bananas", seed=5, steps=10)
        algo.setup(codec, budget=40)
        out = []
        for i in range(40):
            if i == split:
                state = algo.state_dict()
                algo = algorithms.get("bananas", seed=5, steps=10)
                algo.setup(codec, budget=40)
                algo.load_state_dict(state)
            p = algo.propose()
            out.append(p.tokens)
            algo.feedback(p, float(sum(p.tokens) % 11))
        return out

    assert run(None) == run(23)
