"""NSGA-II (Deb et al. 2002) and the Pareto helpers behind it."""

from __future__ import annotations

import json
import math
import random

import pytest

import symbolic_nas as sn
from symbolic_nas import algorithms
from symbolic_nas.algorithms.pareto import (
    crowding_distance,
    dominates,
    hypervolume_2d,
    non_dominated_sort,
    pareto_indices,
)
from symbolic_nas.validation import InvalidParameterError


def test_non_dominated_sort_matches_brute_force():
    rng = random.Random(0)
    for _ in range(200):
        points = [
            [rng.randint(0, 4), rng.randint(0, 4), rng.randint(0, 2)]
            for _ in range(rng.randint(1, 15))
        ]
        fronts = non_dominated_sort(points)
        assert sorted(i for f in fronts for i in f) == list(range(len(points)))
        rank = {i: r for r, f in enumerate(fronts) for i in f}
        for i, p in enumerate(points):
            dominators = [j for j, q in enumerate(points) if dominates(q, p)]
            assert rank[i] == (0 if not dominators else 1 + max(rank[j] for j in dominators))


def test_the_two_objective_sweep_equals_the_general_sort():
    rng = random.Random(1)
    for _ in range(300):
        points = [[rng.randint(0, 5), rng.randint(0, 5)] for _ in range(rng.randint(1, 30))]
        assert pareto_indices(points) == non_dominated_sort(points)[0]


def test_crowding_distance_and_hypervolume():
    assert crowding_distance([[0, 4], [1, 2], [3, 1], [4, 0]]) == pytest.approx(
        [math.inf, (3 - 0) / 4 + (4 - 1) / 4, (4 - 1) / 4 + (2 - 0) / 4, math.inf]
    )
    assert hypervolume_2d([[1, 1]], [0, 0]) == 1.0
    assert hypervolume_2d([[2, 1], [1, 2], [1, 1]], [0, 0]) == 3.0  # the dominated point adds 0
    assert hypervolume_2d([[-1, 5]], [0, 0]) == 0.0


def test_parameters_are_validated():
    with pytest.raises(InvalidParameterError, match="`population_size` must be"):
        algorithms.get("nsga2", population_size=1)
    with pytest.raises(InvalidParameterError, match="`crossover_rate` must be"):
        algorithms.get("nsga2", crossover_rate=1.5)
    algo = algorithms.get("nsga2")
    algo.setup(sn.encode({"a": sn.oneof([1, 2])}))
    with pytest.raises(InvalidParameterError, match="`objectives` must be a non-empty list"):
        algo.feedback(algo.propose(), 1.0, objectives=[math.nan])


def _drive(algo, codec, n, objective):
    for _ in range(n):
        p = algo.propose()
        vector = objective(p.tokens)
        algo.feedback(p, vector[0], objectives=vector)


def test_state_dict_round_trip_with_vectors_continues_identically():
    codec = sn.encode({f"x{i}": sn.oneof(list(range(6))) for i in range(4)})

    def objective(tokens):
        return [float(sum(tokens)), -float(sum(t * t for t in tokens))]

    a = algorithms.get("nsga2", population_size=6, seed=3)
    a.setup(codec, budget=60)
    _drive(a, codec, 30, objective)
    state = json.loads(json.dumps(a.state_dict()))
    b = algorithms.get("nsga2", population_size=6, seed=3)
    b.setup(codec, budget=60)
    b.load_state_dict(state)
    for _ in range(20):
        pa, pb = a.propose(), b.propose()
        assert pa.tokens == pb.tokens
        a.feedback(pa, 0.0, objectives=objective(pa.tokens))
        b.feedback(pb, 0.0, objectives=objective(pb.tokens))
    assert a.population == b.population
    other = algorithms.get("nsga2", population_size=7, seed=3)
    other.setup(codec)
    with pytest.raises(ValueError, match="population_size=7"):
        other.load_state_dict(state)


def test_the_population_keeps_the_best_fronts_and_infeasible_members_rank_last():
    codec = sn.encode({f"x{i}": sn.oneof(list(range(8))) for i in range(3)})
    algo = algorithms.get("nsga2", population_size=4, seed=0)
    algo.setup(codec)
    for _ in range(40):
        p = algo.propose()
        if p.tokens[0] == 0:
            algo.feedback(p, -100.0)  # an infeasible trial: a reward and no vector
        else:
            algo.feedback(p, 0.0, objectives=[float(p.tokens[1]), float(p.tokens[2])])
    vectors = [v for _, v, _, _ in algo.population]
    assert all(v is not None for v in vectors)  # reward-only members were pushed out
    # No member is dominated by a point the algorithm dropped in the last round only:
    assert non_dominated_sort(vectors)[0]


def test_nsga2_spreads_along_the_front_better_than_random():
    """On a conflicting pair of objectives, 80 trials of nsga2 cover more hypervolume."""
    codec = sn.encode({f"x{i}": sn.oneof(list(range(10))) for i in range(5)})

    def objective(tokens):
        a = sum(tokens) / 45.0
        b = sum((9 - t) ** 2 for t in tokens) / 405.0
        return [a, b * (1.0 - 0.5 * (tokens[0] % 2))]

    def hv(name, seed):
        algo = algorithms.get(name, seed=seed)
        algo.setup(codec, budget=120)
        points = []
        for _ in range(120):
            p = algo.propose()
            points.append(objective(p.tokens))
            algo.feedback(p, points[-1][0], objectives=points[-1])
        return hypervolume_2d(points, [0.0, 0.0])

    nsga2 = sum(hv("nsga2", s) for s in range(4)) / 4
    random_search = sum(hv("random", s) for s in range(4)) / 4
    assert nsga2 > random_search
