"""Regularized evolution and the token-level mutation it uses."""

from __future__ import annotations

import collections
import random

import pyglove as pg
import pytest

import symbolic_nas as sn
from symbolic_nas import algorithms
from symbolic_nas.algorithms.evolution import RegularizedEvolution
from symbolic_nas.algorithms.mutation import mutate
from symbolic_nas.testing import algorithm_test_spaces

FLAT = {f"x{i}": sn.oneof([0, 1, 2, 3]) for i in range(4)}


def _reward(tokens):
    return float(sum(tokens) % 5)  # many ties: the tie rule is exercised


# ---------------------------------------------------------------------- same as PyGlove's


class _TokenInit(pg.DNAGenerator):
    """PyGlove generator drawing random tokens from a shared stream."""

    def _setup(self) -> None:
        pass

    def _propose(self) -> pg.DNA:
        return self.codec_.from_tokens(self.codec_.random_tokens(self.rng_))

    def _feedback(self, dna, reward) -> None:
        pass


class _TokenMutator(pg.evolution.Mutator):
    """PyGlove mutator applying the token-level mutation with a shared stream."""

    def mutate(self, dna: pg.DNA, step: int = 0) -> pg.DNA:
        del step
        return self.codec_.from_tokens(mutate(self.codec_, self.codec_.to_tokens(dna), self.rng_))


def _run(propose, feedback, n, lag, fail_every):
    """Proposes n times with up to `lag` outstanding (answered in a seeded order)."""
    order = random.Random(99)
    out, waiting = [], []
    for i in range(n):
        item, tokens = propose()
        out.append(tokens)
        waiting.append((i, item, tokens))
        while len(waiting) > lag:
            j, item, tokens = waiting.pop(order.randrange(len(waiting)))
            feedback(item, None if fail_every and j % fail_every == 0 else _reward(tokens))
    return out


def _pyglove(space, population, tournament, seed, n, lag, fail_every):
    codec = sn.encode(space)
    stream = random.Random(seed)
    mutator, init = _TokenMutator(), _TokenInit()
    evo = pg.evolution.regularized_evolution(
        mutator=mutator, population_size=population, tournament_size=tournament, seed=0
    )
    evo.rebind({"population_init": (init, population)})
    evo.setup(codec.spec)
    for obj in (mutator, evo.population_init[0], evo.reproduction.ops[0].ops[0]):
        obj.codec_, obj.rng_ = codec, stream
    evo.reproduction.ops[0].ops[0]._random = stream  # PyGlove's tournament selector

    def propose():
        dna = evo.propose()
        return dna, codec.to_tokens(dna)

    def feedback(dna, reward):
        if reward is not None:  # pg.sample's skip(): nothing reaches the algorithm
            evo.feedback(dna, reward)

    return _run(propose, feedback, n, lag, fail_every)


def _ours(space, population, tournament, seed, n, lag, fail_every):
    algo = algorithms.get(
        "evolution", population_size=population, tournament_size=tournament, seed=seed
    )
    algo.setup(sn.encode(space))

    def propose():
        p = algo.propose()
        return p, p.tokens

    return _run(propose, algo.feedback, n, lag, fail_every)


@pytest.mark.parametrize(
    ("space_name", "population", "tournament", "lag", "fail_every"),
    [
        ("flat", 6, 3, 0, 0),
        ("flat", 5, 5, 4, 7),
        ("conditional", 4, 2, 2, 5),
    ],
)
def test_same_algorithm_as_pyglove_regularized_evolution(
    space_name, population, tournament, lag, fail_every
):
    """PyGlove's own regularized_evolution (Random(S) >> Top(1) >> mutator, initial
    population of P, Last(P)), driven with our random stream and mutation, proposes
    exactly what ours does: same switch from random to evolved proposals (after P
    rewards), same tournament (without replacement, first-sampled wins ties), same
    aging (oldest by feedback order dies), with out-of-order and failed feedback."""
    space = FLAT if space_name == "flat" else algorithm_test_spaces()[space_name]
    args = (space, population, tournament, 7, 40, lag, fail_every)
    assert _ours(*args) == _pyglove(*args)


def test_pyglove_harness_would_notice_another_algorithm():
    class WithReplacement(RegularizedEvolution):
        def _propose(self):
            if len(self._population) < self.population_size:
                return super()._propose()
            sample = [self.rng.choice(list(self._population)) for _ in range(3)]
            parent = max(sample, key=lambda m: m[1])
            return mutate(self.codec, parent[0], self.rng), {"parent": parent[2]}

    algo = WithReplacement(population_size=6, tournament_size=3, seed=7)
    algo.setup(sn.encode(FLAT))

    def propose():
        p = algo.propose()
        return p, p.tokens

    assert _run(propose, algo.feedback, 40, 0, 0) != _pyglove(FLAT, 6, 3, 7, 40, 0, 0)


# ---------------------------------------------------------------------- the algorithm


def test_random_until_the_population_is_full_of_finished_members():
    algo = algorithms.get("evolution", population_size=5, tournament_size=2, seed=0)
    algo.setup(sn.encode(FLAT))
    pending = [algo.propose() for _ in range(12)]  # nothing finished: all random
    assert all(p.meta == {"parent": None} for p in pending)
    for p in pending[:4]:
        algo.feedback(p, 1.0)
    assert algo.propose().meta == {"parent": None}  # 4 finished < 5
    algo.feedback(pending[4], 1.0)
    child = algo.propose()
    assert child.meta["parent"] in {m[2] for m in algo.population}


def test_children_are_one_decision_mutations_of_the_tournament_winner():
    codec = sn.encode(FLAT)
    algo = algorithms.get("evolution", population_size=4, tournament_size=4, seed=1)
    algo.setup(codec)
    rewards = {}
    for i in range(4):
        p = algo.propose()
        rewards[p.id] = float(i)
        algo.feedback(p, float(i))
    best = max(algo.population, key=lambda m: m[1])
    for _ in range(10):  # S = P: the tournament always holds the best member
        child = algo.propose()
        assert child.meta["parent"] == best[2]
        assert sum(a != b for a, b in zip(child.tokens, best[0])) == 1


def test_the_oldest_member_dies_whatever_its_reward():
    algo = algorithms.get("evolution", population_size=3, tournament_size=2, seed=0)
    algo.setup(sn.encode(FLAT))
    first = algo.propose()
    algo.feedback(first, 100.0)
    ages = []
    for _ in range(3):
        p = algo.propose()
        algo.feedback(p, 0.0)
        ages.append([m[2] for m in algo.population])
    assert ages[1] == [first.id, 1, 2]
    assert first.id not in ages[2] and ages[2] == [1, 2, 3]
    assert algo.stats() == {"population": 3.0, "population_best": 0.0, "population_mean": 0.0}


def test_population_is_in_feedback_order_and_failures_never_join():
    algo = algorithms.get("evolution", population_size=4, tournament_size=2, seed=0)
    algo.setup(sn.encode(FLAT))
    ps = [algo.propose() for _ in range(5)]
    for p, reward in zip([ps[3], ps[0], ps[4], ps[1], ps[2]], [1.0, None, float("nan"), 2.0, 3.0]):
        algo.feedback(p, reward)
    assert [m[2] for m in algo.population] == [3, 1, 2]
    assert algo.version == 3 and algo.num_failed == 2


def test_hyperparameters_are_validated():
    with pytest.raises(ValueError, match=r"`population_size` must be an int >= 2, but got 1"):
        RegularizedEvolution(population_size=1)
    with pytest.raises(ValueError, match=r"`population_size` must be an int >= 2, but got True"):
        RegularizedEvolution(population_size=True)
    with pytest.raises(
        ValueError, match=r"`tournament_size` must be an int in \[2, population_size=4\], but got 5"
    ):
        RegularizedEvolution(population_size=4, tournament_size=5)
    with pytest.raises(ValueError, match=r"`tournament_size` must be .* but got 1"):
        RegularizedEvolution(tournament_size=1)
    assert repr(RegularizedEvolution()) == (
        "RegularizedEvolution(population_size=20, tournament_size=5, seed=0)"
    )


def test_state_from_other_hyperparameters_is_refused():
    codec = sn.encode(FLAT)
    algo = algorithms.get("evolution", seed=0)
    algo.setup(codec)
    algo.feedback(algo.propose(), 1.0)
    other = algorithms.get("evolution", population_size=10, tournament_size=3, seed=0)
    other.setup(codec)
    with pytest.raises(ValueError, match=r"`population_size` must match the saved"):
        other.load_state_dict(algo.state_dict())


def test_evolution_beats_random_search_on_a_larger_toy():
    """Defaults (P=20, S=5) at 200 trials on 20 decisions: the best found beats random
    search's best on every seed."""
    from symbolic_nas.testing import ToyObjective

    for seed in range(3):
        toy = ToyObjective(seed=seed, num_decisions=20, vocab_size=4)
        best = {}
        for name in ("evolution", "random"):
            algo = algorithms.get(name, seed=seed)
            algo.setup(toy.codec, budget=200)
            best[name] = 0.0
            for _ in range(200):
                p = algo.propose()
                best[name] = max(best[name], toy(p.tokens))
                algo.feedback(p, toy(p.tokens))
        assert best["evolution"] > best["random"] + 0.05, (seed, best)


# ---------------------------------------------------------------------- mutation


@pytest.mark.parametrize("space_name", sorted(algorithm_test_spaces()))
def test_mutation_gives_valid_different_sequences(space_name):
    codec = sn.encode(algorithm_test_spaces()[space_name])
    rng = random.Random(0)
    for _ in range(60):
        tokens = codec.random_tokens(rng)
        child = mutate(codec, tokens, rng)
        codec.validate(child)
        assert child != tokens


def test_mutation_changes_exactly_one_token_of_a_flat_space_uniformly():
    codec = sn.encode(FLAT)
    rng = random.Random(0)
    parent = [0, 1, 2, 3]
    positions, values = collections.Counter(), collections.Counter()
    for _ in range(4000):
        child = mutate(codec, parent, rng)
        (i,) = [i for i in range(4) if child[i] != parent[i]]
        positions[i] += 1
        values[(i, child[i])] += 1
    assert all(900 < positions[i] < 1100 for i in range(4))  # uniform position
    assert all(250 < values[(i, v)] < 420 for i in range(4) for v in range(4) if v != parent[i])


def test_mutation_resamples_the_subtree_it_activates_and_keeps_the_rest():
    codec = sn.encode(algorithm_test_spaces()["conditional"])
    # block = conv (kernel 5, inner = dilation 2), width 32
    parent = [0, 2, 0, 1, 1]
    assert codec.labels(parent)["width"] == "32"
    rng = random.Random(0)
    seen_branches = set()
    for _ in range(300):
        child = mutate(codec, parent, rng)
        trace = codec.trace(child)
        decisions = dict(zip(trace, child))
        old = dict(zip(codec.trace(parent), parent))
        changed = [d for d in decisions if d in old and decisions[d] != old[d]]
        new = [d for d in decisions if d not in old]
        assert len(changed) == 1 or (not changed and new)
        if changed and changed[0] == trace[0]:  # the root choice moved: a new branch
            seen_branches.add(child[0])
            assert decisions[trace[-1]] == old[codec.trace(parent)[-1]]  # width kept
    assert seen_branches == {1, 2}


def test_mutation_keeps_exact_k_anchor_groups_valid_and_changes_membership():
    codec = sn.encode(sn.manyof(2, [0, 1, 2, 3], sorted=True, hints={"anchor": "L4"}))
    rng = random.Random(0)
    children = collections.Counter()
    for _ in range(800):
        child = mutate(codec, [1, 1, 0, 0], rng)
        assert sum(child) == 2
        children[tuple(child)] += 1
    # one membership moved: every set one swap away, uniformly
    assert set(children) == {(0, 1, 1, 0), (0, 1, 0, 1), (1, 0, 1, 0), (1, 0, 0, 1)}
    assert all(150 < n < 250 for n in children.values())


def test_mutation_of_a_single_point_space_returns_the_tokens():
    codec = sn.encode({"a": sn.oneof([1]), "b": sn.oneof([2])})
    assert mutate(codec, [0, 0], random.Random(0)) == [0, 0]
    with pytest.raises(ValueError, match=r"token sequence too short"):
        mutate(codec, [0], random.Random(0))
