"""``local_search`` and the neighbourhood it climbs (``mutation.neighbours``)."""

from __future__ import annotations

import random

import pytest

import symbolic_nas as sn
from symbolic_nas import algorithms, spaces
from symbolic_nas.algorithms.mutation import neighbours
from symbolic_nas.testing import algorithm_test_spaces, check_algorithm
from symbolic_nas.validation import InvalidParameterError


def _flat() -> sn.Codec:
    return sn.encode({"a": sn.oneof([1, 2, 3]), "b": sn.oneof([4, 5]), "c": sn.oneof([6, 7, 8])})


def test_neighbours_of_a_flat_space_change_exactly_one_token():
    codec = _flat()
    found = neighbours(codec, [0, 1, 2], random.Random(0))
    assert len(found) == 2 + 1 + 2
    assert all(sum(x != y for x, y in zip(n, [0, 1, 2])) == 1 for n in found)
    assert len({tuple(n) for n in found}) == len(found)


@pytest.mark.parametrize("name", sorted(algorithm_test_spaces()))
def test_neighbours_are_valid_distinct_and_one_step_away(name):
    codec = sn.encode(algorithm_test_spaces()[name])
    rng = random.Random(1)
    for _ in range(20):
        tokens = codec.random_tokens(rng)
        found = neighbours(codec, tokens, rng)
        keys = [tuple(n) for n in found]
        assert len(set(keys)) == len(keys) and tuple(tokens) not in keys
        for n in found:
            codec.validate(n)


def test_neighbours_of_an_exact_k_group_swap_one_membership():
    codec = sn.encode({"x": sn.manyof(2, [1, 2, 3, 4], distinct=True, sorted=True)})
    tokens = codec.random_tokens(random.Random(0))
    for n in neighbours(codec, tokens, random.Random(0)):
        codec.validate(n)
        assert n != tokens


def test_neighbours_open_new_branches_of_a_conditional_space():
    codec = sn.encode(algorithm_test_spaces()["conditional"])
    start = codec.random_tokens(random.Random(3))
    lengths = {len(n) for n in neighbours(codec, start, random.Random(0))}
    assert len(lengths) > 1  # some neighbours switch branch (other decisions become active)


def test_first_climb_starts_at_the_best_random_start_and_visits_all_its_neighbours():
    codec = _flat()
    algo = algorithms.get("local_search", num_init=3, seed=0)
    algo.setup(codec)
    starts = []
    for _ in range(3):
        p = algo.propose()
        assert p.meta["role"] == "start"
        starts.append((sum(p.tokens), p.tokens))
        algo.feedback(p, float(sum(p.tokens)))
    center = max(starts)[1]
    expected = {tuple(n) for n in neighbours(codec, center, random.Random(0))}
    expected -= {tuple(t) for _, t in starts}
    got = set()
    for _ in range(len(expected)):
        p = algo.propose()
        assert p.meta["role"] == "neighbour"
        got.add(tuple(p.tokens))
        algo.feedback(p, float(sum(p.tokens)))
    assert got == expected


def test_reaches_the_optimum_of_an_additive_objective_and_never_repeats():
    codec = sn.encode([sn.oneof(list(range(5))) for _ in range(6)])
    algo = algorithms.get("local_search", num_init=5, seed=4)
    algo.setup(codec, budget=200)
    seen = set()
    for _ in range(200):
        p = algo.propose()
        assert tuple(p.tokens) not in seen
        seen.add(tuple(p.tokens))
        algo.feedback(p, float(sum(p.tokens)))
    assert algo.best == ([4] * 6, 24.0)


def test_many_outstanding_proposals_are_distinct_and_spares_fill_the_wait():
    codec = sn.encode([sn.oneof(list(range(5))) for _ in range(6)])
    algo = algorithms.get("local_search", num_init=4, seed=0)
    algo.setup(codec)
    first = [algo.propose() for _ in range(30)]
    assert len({tuple(p.tokens) for p in first}) == 30
    assert [p.meta["role"] for p in first[:5]] == ["start"] * 4 + ["spare"]
    for p in reversed(first):  # feedback in reverse order, some failed
        algo.feedback(p, None if p.id % 7 == 0 else float(sum(p.tokens)))
    assert algo.propose().meta["role"] == "neighbour"


def test_a_small_space_is_exhausted_then_proposals_repeat():
    codec = sn.encode({"a": sn.oneof([1, 2]), "b": sn.oneof([3, 4])})
    algo = algorithms.get("local_search", num_init=1, seed=0)
    algo.setup(codec)
    tokens = []
    for _ in range(10):
        p = algo.propose()
        tokens.append(tuple(p.tokens))
        algo.feedback(p, float(sum(p.tokens)))
    assert len(set(tokens[:4])) == 4 and len(tokens) == 10


@pytest.mark.parametrize("value", [0, -1, 1.5, "3", None])
def test_num_init_is_validated(value):
    with pytest.raises(InvalidParameterError, match="`num_init` must be an int >= 1, but got"):
        algorithms.get("local_search", num_init=value)


def test_contract():
    check_algorithm(lambda seed: algorithms.get("local_search", num_init=3, seed=seed))


@pytest.mark.parametrize("space", ["zoph_le_cnn", "metaqnn"])
def test_runs_a_few_hundred_trials_on_conditional_spaces(space):
    codec = sn.encode(spaces.get(space))
    algo = algorithms.get("local_search", seed=0)
    algo.setup(codec, budget=300)
    outstanding = []
    for i in range(300):
        outstanding.append(algo.propose())
        if len(outstanding) == 4 or i == 299:  # four workers, answered out of order
            for p in outstanding[::-1]:
                codec.validate(p.tokens)
                algo.feedback(p, None if p.id % 50 == 0 else float(sum(p.tokens) % 17))
            outstanding = []
    assert algo.num_feedback == 300 and algo.version > 1
    best = algo.best
    assert best is not None and best[1] >= 12


def test_resume_replays_exactly():
    codec = sn.encode(spaces.get("zoph_le_cnn"))

    def run(split: int | None) -> list[list[int]]:
        algo = algorithms.get("local_search", seed=5)
        algo.setup(codec, budget=120)
        out = []
        for i in range(120):
            if i == split:
                state = algo.state_dict()
                algo = algorithms.get("local_search", seed=5)
                algo.setup(codec, budget=120)
                algo.load_state_dict(state)
            p = algo.propose()
            out.append(p.tokens)
            algo.feedback(p, float(sum(p.tokens) % 11))
        return out

    assert run(None) == run(57)
