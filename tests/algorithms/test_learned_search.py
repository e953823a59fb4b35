"""The learned search agent: moves, the network, agent files, Ape-X training."""

from __future__ import annotations

import os
import pathlib
import random

import numpy as np
import pytest
import torch

import symbolic_nas as sn
from symbolic_nas import algorithms, spaces
from symbolic_nas.algorithms.learned_search import (
    load_agent,
    new_agent,
    save_agent,
    signature,
    train,
)
from symbolic_nas.algorithms.learned_search.actors import (
    Actor,
    ActorDied,
    ProcessActor,
    wait_any,
)
from symbolic_nas.algorithms.learned_search.algorithm import choose_move
from symbolic_nas.algorithms.learned_search.learning import NStep, PrioritizedReplay
from symbolic_nas.algorithms.learned_search.walk import Walk
from symbolic_nas.algorithms.mutation import labelled_neighbours as neighbours
from symbolic_nas.testing import algorithm_test_spaces

NB201 = sn.encode(spaces.get("nasbench201"))
#: A tiny space whose best move is known: decision ``a`` is worth ten times the others.
TINY = {"a": sn.oneof([0, 1, 2, 3]), "b": sn.oneof([0, 1, 2, 3]), "c": sn.oneof([0, 1, 2, 3])}


def tiny_objective(tokens: list[int]) -> float:
    return 10.0 * tokens[0] + tokens[1] + tokens[2]


SHAPE = {"dim": 16, "heads": 2, "layers": 1}


# ---------------------------------------------------------------------- moves


def test_nasbench201_has_24_neighbours_each_one_edge_apart():
    found = neighbours(NB201, [0, 1, 2, 3, 4, 0], random.Random(0))
    assert len(found) == 6 * 4
    for (position, token), n in found:
        assert [i for i, (x, y) in enumerate(zip(n, [0, 1, 2, 3, 4, 0])) if x != y] == [position]
        assert n[position] == token


@pytest.mark.parametrize("name", sorted(algorithm_test_spaces()))
def test_neighbours_are_valid_and_respect_groups(name):
    codec = sn.encode(algorithm_test_spaces()[name])
    rng = random.Random(1)
    for _ in range(10):
        tokens = codec.random_tokens(rng)
        found = neighbours(codec, tokens, rng)
        assert found or codec.space_size == 1
        for _, n in found:
            codec.validate(n)
            assert n != tokens


# ---------------------------------------------------------------------- walk and learning


def test_walk_moves_only_uphill_and_never_offers_a_seen_neighbour():
    walk = Walk(NB201, random.Random(0))
    start = [0, 0, 0, 0, 0, 0]
    assert walk.observe(start, 10.0) == 0.0
    worse = walk.candidates()[(0, 1)]
    walk.propose(worse)
    assert (0, 1) not in walk.candidates()
    walk.observe(worse, 5.0)
    assert walk.current == start
    better = walk.candidates()[(1, 3)]
    reward = walk.observe(better, 20.0)
    assert walk.current == better and reward == pytest.approx(10.0 / np.std([10, 5, 20]))


def test_nstep_returns_and_replay_priorities():
    acc = NStep(n=3, gamma=0.5)
    out = [t for i in range(5) for t in acc.push(i, i, 1.0)]
    assert [t.action for t in out] == [0, 1]
    assert out[0].reward == pytest.approx(1 + 0.5 + 0.25) and out[0].next_state == 3
    replay = PrioritizedReplay(capacity=10, seed=0)
    replay.add(list(range(4)), np.array([1e-6, 1e-6, 1e-6, 100.0]))
    _, items, weights = replay.sample(50)
    assert items.count(3) > 45 and weights.max() == pytest.approx(1.0)


def test_the_network_scores_only_open_moves():
    agent = new_agent(NB201, seed=0, **SHAPE)
    walk = Walk(NB201, random.Random(0))
    walk.observe([0, 1, 2, 3, 4, 0], 50.0)
    candidates = walk.candidates()
    del candidates[(0, 1)]
    move, obs, action = choose_move(
        agent.network, walk, candidates, horizon=10, epsilon=0.0, rng=random.Random(0)
    )
    assert move in candidates and obs["mask"].sum() == 23 and not obs["mask"][0, 1]
    assert action == move[0] * 5 + move[1]


# ---------------------------------------------------------------------- the algorithm


def test_default_uses_the_shipped_agent_on_nasbench201_and_learns_elsewhere():
    algo = algorithms.get("learned_search", seed=0)
    algo.setup(NB201, budget=20)
    assert (algo.trained, algo.online) == (True, False)
    other = algorithms.get("learned_search", seed=0, batch_size=8)
    other.setup(sn.encode(TINY), budget=20)
    assert (other.trained, other.online) == (False, True)
    for _ in range(20):
        p = other.propose()
        other.feedback(p, tiny_objective(p.tokens))
    assert other.version > 0  # it learned online


def test_the_shipped_agent_searches_nasbench201_without_repeats():
    from symbolic_nas.nasbench import NasBench201

    bench = NasBench201()
    result = sn.search(bench.codec, bench.evaluate, algorithm="learned_search", num_trials=60,
                       seed=3, progress=False)  # fmt: skip
    tokens = [tuple(t.tokens) for t in result.trials]
    assert len(set(tokens)) == 60
    assert result.best.reward > 80  # random search's median cell scores about 70


def test_an_agent_file_round_trips(tmp_path):
    agent = new_agent(NB201, seed=5, **SHAPE)
    agent.info = {"objective": "x"}
    path = save_agent(agent, tmp_path / "agent.pt")
    loaded = load_agent(path)
    assert loaded.signature == signature(NB201) and loaded.info == {"objective": "x"}
    for a, b in zip(agent.network.state_dict().values(), loaded.network.state_dict().values()):
        assert torch.equal(a, b)
    algo = algorithms.get("learned_search", agent=str(path), seed=0)
    algo.setup(NB201)
    assert algo.trained and not algo.online


def test_a_missing_agent_is_named(tmp_path):
    algo = algorithms.get("learned_search", agent=str(tmp_path / "nope.pt"))
    with pytest.raises(
        FileNotFoundError, match=r"`agent` must be a shipped agent's name.*nope\.pt"
    ):
        algo.setup(NB201)


def test_a_corrupt_agent_file_is_refused(tmp_path):
    good = save_agent(new_agent(NB201, seed=0, **SHAPE), tmp_path / "good.pt")
    torn = tmp_path / "torn.pt"
    torn.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"`agent` must be a learned_search agent file.*torn\.pt"):
        load_agent(torn)
    text = tmp_path / "text.pt"
    text.write_text("not weights")
    with pytest.raises(ValueError, match="could not be read"):
        load_agent(text)


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_an_agent_file_is_never_unpickled_as_arbitrary_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "symbolic_nas.learned_search/1", "config": _Payload()}, path)
    with pytest.raises(ValueError, match="could not be read: UnpicklingError"):
        load_agent(path)


def test_an_agent_of_another_space_is_refused(tmp_path):
    path = save_agent(new_agent(sn.encode(TINY), seed=0, **SHAPE), tmp_path / "tiny.pt")
    algo = algorithms.get("learned_search", agent=str(path))
    with pytest.raises(ValueError, match=r"same decisions.*decision 0 = \['a', 'categorical', 4\]"):
        algo.setup(NB201)


def test_bad_hyperparameters_name_the_rule():
    with pytest.raises(ValueError, match="`epsilon` must be"):
        algorithms.get("learned_search", epsilon=2.0)
    with pytest.raises(ValueError, match="`agent` must be"):
        algorithms.get("learned_search", agent=3)


# ---------------------------------------------------------------------- actors and learner


def _actor(seed: int = 0, epsilon: float = 0.5) -> Actor:
    return Actor(TINY, tiny_objective, seed=seed, epsilon=epsilon, episode_length=10, gamma=0.9,
                 n_step=3, shape=SHAPE)  # fmt: skip


def test_an_actor_runs_episodes_with_the_weights_it_is_sent():
    actor = _actor()
    weights = new_agent(sn.encode(TINY), seed=9, **SHAPE).network.state_dict()
    out = actor.run(weights, 25)
    assert out["steps"] == 25 and len(out["returns"]) == 2  # episodes of 10 queries
    assert len(out["transitions"]) == len(out["priorities"]) >= 15
    assert all(p > 0 for p in out["priorities"])
    for k, v in actor.network.state_dict().items():
        assert torch.equal(v, weights[k])
    again = _actor().run(weights, 25)
    assert [t.action for t in again["transitions"]] == [t.action for t in out["transitions"]]


def test_a_process_actor_round_trip_and_death():
    kwargs = {"space": TINY, "objective": tiny_objective, "seed": 0, "epsilon": 0.5,
              "episode_length": 10, "gamma": 0.9, "n_step": 3, "shape": SHAPE}  # fmt: skip
    actor = ProcessActor("actor-test", kwargs, timeout=300)
    try:
        actor.submit(new_agent(sn.encode(TINY), seed=0, **SHAPE).network.state_dict(), 12)
        out = actor.result()
        assert out["steps"] == 12 and out["transitions"]
        actor.process.kill()
        actor.process.join(5)
        actor.submit({}, 1)
        with pytest.raises(ActorDied, match="actor-test died"):
            actor.result()
    finally:
        actor.close()


@pytest.mark.slow
def test_wait_any_names_the_actor_that_answered_then_the_one_that_died_or_is_overdue():
    kwargs = {"space": TINY, "objective": tiny_objective, "seed": 0, "epsilon": 0.5,
              "episode_length": 10, "gamma": 0.9, "n_step": 3, "shape": SHAPE}  # fmt: skip
    weights = new_agent(sn.encode(TINY), seed=0, **SHAPE).network.state_dict()
    actors = [ProcessActor(f"actor-{i}", kwargs, timeout=300) for i in range(2)]
    try:
        actors[0].submit(weights, 12)
        actors[1].timeout = 1e9  # Never sent a request: only its death may wake wait_any.
        assert wait_any(actors, poll=0.05) == [0]
        assert actors[0].result()["steps"] == 12
        actors[0].submitted = float("inf")  # Nothing pending: ignore it from now on.
        actors[1].process.kill()
        assert wait_any(actors, poll=0.05) == [1]
        with pytest.raises(ActorDied, match="actor-1 died"):
            actors[1].result()
        actors[0].submitted, actors[0].timeout = 0.0, 0.01  # A request long overdue.
        assert wait_any(actors[:1], poll=0.05) == [0]
        with pytest.raises(ActorDied, match="did not answer within"):
            actors[0].result()
    finally:
        for actor in actors:
            actor.close()


def test_an_actor_takes_weights_as_numpy_arrays_as_the_learner_sends_them():
    network = new_agent(sn.encode(TINY), seed=3, **SHAPE).network
    arrays = {k: v.numpy().copy() for k, v in network.state_dict().items()}
    actor = _actor()
    actor.run(arrays, 3)
    for k, v in actor.network.state_dict().items():
        assert torch.equal(v, network.state_dict()[k])


def one_good_move(tokens: list[int]) -> float:
    """From any cell with ``a != 3`` exactly one move improves: setting ``a`` to 3."""
    return 10.0 if tokens[0] == 3 else 0.0


def _best_first_move(agent) -> tuple[int, int]:
    walk = Walk(sn.encode(TINY), random.Random(0))
    walk.observe([0, 1, 2], 0.0)
    move, _, _ = choose_move(
        agent.network, walk, walk.candidates(), horizon=10, epsilon=0.0, rng=random.Random(0)
    )
    return move


@pytest.mark.slow
def test_training_learns_the_known_best_move_and_is_reproducible():
    settings = dict(
        actors=1, transitions=1500, chunk=100, episode_length=10, warmup=200,
        updates_per_transition=0.3, batch_size=32, target_every=50, seed=0, **SHAPE,
    )  # fmt: skip
    first = train(one_good_move, TINY, **settings)
    assert _best_first_move(first.agent) == (0, 3)
    second = train(one_good_move, TINY, **settings)
    for a, b in zip(first.agent.network.parameters(), second.agent.network.parameters()):
        assert torch.equal(a, b)


def test_fractional_updates_carry_over_between_chunks():
    # 0.015 updates per transition with chunks of 40: under one update per chunk,
    # so a learner that dropped the fraction would never update.
    result = train(tiny_objective, TINY, actors=1, transitions=400, chunk=40, episode_length=10,
                   warmup=40, batch_size=32, updates_per_transition=0.015, seed=0,
                   **SHAPE)  # fmt: skip
    assert 3 <= result.updates <= 6  # ~0.015 * 360 transitions past the warm-up


@pytest.mark.slow
def test_two_asynchronous_actors_train_and_ordered_rounds_reproduce_the_agent():
    settings = dict(actors=2, transitions=600, chunk=50, episode_length=10, warmup=100,
                    batch_size=32, updates_per_transition=0.1, seed=0, **SHAPE)  # fmt: skip
    async_run = train(tiny_objective, TINY, **settings)
    assert async_run.transitions >= 600 and async_run.updates > 0
    assert async_run.agent.info["ordered"] is False
    first = train(tiny_objective, TINY, ordered=True, **settings)
    second = train(tiny_objective, TINY, ordered=True, **settings)
    assert first.transitions == second.transitions and first.updates == second.updates
    for a, b in zip(first.agent.network.parameters(), second.agent.network.parameters()):
        assert torch.equal(a, b)


class DiesOnce:
    """An objective whose first call in a fresh process kills that process once."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __call__(self, tokens: list[int]) -> float:
        if not self.marker.exists():
            self.marker.write_text("died")
            os._exit(3)
        return tiny_objective(tokens)


@pytest.mark.slow
def test_a_dead_actor_is_restarted_and_a_checkpointed_learner_resumes(tmp_path):
    settings = dict(actors=1, chunk=50, episode_length=10, warmup=50, batch_size=32,
                    updates_per_transition=0.1, seed=0, **SHAPE)  # fmt: skip
    lines: list[str] = []
    first = train(DiesOnce(tmp_path / "marker"), TINY, transitions=150,
                  checkpoint_dir=tmp_path / "ck", checkpoint_every=1, log=lines.append,
                  logdir=tmp_path / "tb", **settings)  # fmt: skip
    assert first.restarts == 1 and first.transitions == 150
    assert any("restarting learned_search-actor-0" in line for line in lines)
    resumed = train(tiny_objective, TINY, transitions=300, checkpoint_dir=tmp_path / "ck",
                    **settings)  # fmt: skip
    assert resumed.transitions == 300 and resumed.updates > first.updates
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"learner/loss", "learner/replay_size", "actors/transitions_per_second",
            "actors/epsilon/0", "episodes/return"} <= tags  # fmt: skip


@pytest.mark.slow
def test_ray_actors_train():
    pytest.importorskip("ray")
    result = train(tiny_objective, TINY, actors=2, executor="ray", transitions=200, chunk=50,
                   episode_length=10, warmup=50, batch_size=32, updates_per_transition=0.1,
                   seed=0, **SHAPE)  # fmt: skip
    assert result.transitions == 200 and result.updates > 0
