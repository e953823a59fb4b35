"""The algorithm base class, the failure policy, the registry and the PyGlove adapter."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pyglove as pg
import pytest
import torch

import symbolic_nas as sn
from symbolic_nas import algorithms
from symbolic_nas.algorithms import Algorithm, Proposal, base
from symbolic_nas.algorithms.random_search import RandomSearch

CODEC_SPACE = {"k": sn.oneof([3, 5, 7]), "act": sn.oneof(["relu", "gelu"])}


class _Recorder(Algorithm):
    """Proposes the first valid tokens; records what the hooks receive."""

    def _setup(self) -> None:
        self.calls: list[tuple[str, int, float | None]] = []

    def _propose(self):
        return self.codec.random_tokens(self.rng), {"n": self.num_proposed}

    def _feedback(self, proposal, reward) -> None:
        self.calls.append(("feedback", proposal.id, reward))

    def _failed(self, proposal) -> None:
        self.calls.append(("failed", proposal.id, None))


def _recorder() -> _Recorder:
    algo = _Recorder(seed=0)
    algo.setup(sn.encode(CODEC_SPACE), budget=10)
    return algo


# ---------------------------------------------------------------------- Proposal


def test_proposal_round_trips_and_builds_its_dna_lazily():
    codec = sn.encode(CODEC_SPACE)
    p = Proposal(id=4, tokens=[2, 1], version=3, meta={"x": 1}, codec=codec)
    assert p._dna is None
    assert codec.to_tokens(p.dna) == [2, 1] and p._dna is not None
    data = p.to_dict()
    assert json.loads(json.dumps(data)) == {
        "id": 4,
        "tokens": [2, 1],
        "version": 3,
        "meta": {"x": 1},
    }
    q = Proposal.from_dict(data, codec)
    assert (q.id, q.tokens, q.version, q.meta, q.codec) == (4, [2, 1], 3, {"x": 1}, codec)
    with pytest.raises(ValueError, match=r"proposal 4 has no codec to build its DNA with"):
        _ = Proposal.from_dict(data).dna


# ---------------------------------------------------------------------- lifecycle


def test_setup_is_required_and_validated():
    algo = _Recorder(seed=0)
    with pytest.raises(RuntimeError, match=r"_Recorder.setup\(codec\) must be called first"):
        algo.propose()
    with pytest.raises(TypeError, match=r"`codec` must be a symbolic_nas Codec"):
        algo.setup({"k": sn.oneof([1, 2])})
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match=r"`budget` must be an int >= 1 or None"):
            algo.setup(sn.encode(CODEC_SPACE), budget=bad)
    with pytest.raises(ValueError, match=r"`seed` must be an int or None, but got 1.5"):
        _Recorder(seed=1.5)


def test_proposals_get_ids_versions_and_stay_outstanding_until_answered():
    algo = _recorder()
    ps = [algo.propose() for _ in range(3)]
    assert [p.id for p in ps] == [0, 1, 2] and algo.num_proposed == 3
    assert [p.meta for p in ps] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert all(p.codec is algo.codec and p.version == 0 for p in ps)
    algo.feedback(ps[1], 0.5)
    assert [p.id for p in algo.outstanding] == [0, 2]
    assert algo.calls == [("feedback", 1, 0.5)]


@pytest.mark.parametrize("reward", [None, math.nan, math.inf, -math.inf, np.float64("nan")])
def test_failure_policy_closes_the_proposal_without_learning_signal(reward):
    algo = _recorder()
    p = algo.propose()
    algo.feedback(p, reward)
    assert algo.calls == [("failed", 0, None)]
    assert algo.num_failed == 1 and algo.num_feedback == 1 and not algo.outstanding


def test_numpy_and_int_rewards_are_accepted_as_floats():
    algo = _recorder()
    for reward in (np.float32(0.25), np.int64(2), 1):
        algo.feedback(algo.propose(), reward)
    assert [c[2] for c in algo.calls] == [0.25, 2.0, 1.0]
    assert all(type(c[2]) is float for c in algo.calls)


def test_bad_feedback_is_refused_and_the_proposal_stays_outstanding():
    algo = _recorder()
    p = algo.propose()
    with pytest.raises(TypeError, match=r"`proposal` must be a Proposal, but got 0"):
        algo.feedback(0, 1.0)
    for bad in ("0.5", True, [1.0], torch.tensor(1.0)):
        with pytest.raises(TypeError, match=r"`reward` must be a float or None"):
            algo.feedback(p, bad)
    assert algo.outstanding == [p]  # still answerable
    forged = Proposal(id=p.id, tokens=[(p.tokens[0] + 1) % 3, p.tokens[1]])
    with pytest.raises(ValueError, match=r"must be one this algorithm proposed"):
        algo.feedback(forged, 1.0)
    algo.feedback(Proposal.from_dict(p.to_dict()), 1.0)  # an equal copy is fine
    with pytest.raises(ValueError, match=r"proposal 0 was never proposed .* already got"):
        algo.feedback(p, 1.0)
    with pytest.raises(ValueError, match=r"proposal 7 was never proposed"):
        algo.feedback(Proposal(id=7, tokens=[0, 0]), 1.0)


def test_setup_starts_over():
    algo = _recorder()
    first = [algo.propose().tokens for _ in range(5)]
    algo.feedback(algo.outstanding[0], None)
    algo.setup(sn.encode(CODEC_SPACE), budget=3)
    assert (algo.num_proposed, algo.num_feedback, algo.num_failed, algo.outstanding) == (
        0,
        0,
        0,
        [],
    )
    assert [algo.propose().tokens for _ in range(5)] == first and algo.budget == 3


# ---------------------------------------------------------------------- state


def test_state_dict_is_json_and_weights_only_loadable_and_restores_exactly():
    codec = sn.encode(CODEC_SPACE)
    algo = algorithms.get("random", seed=3)
    algo.setup(codec, budget=20)
    for _ in range(4):
        algo.feedback(algo.propose(), 1.0)
    kept = [algo.propose(), algo.propose()]
    algo.feedback(algo.propose(), None)
    state = algo.state_dict()
    json.dumps(state)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    clone = algorithms.get("random", seed=99)  # the state carries the RNG, not the seed
    clone.setup(codec, budget=1)
    clone.load_state_dict(loaded)
    assert clone.budget == 20 and clone.num_proposed == 7
    assert (clone.num_feedback, clone.num_failed) == (5, 1)
    assert [(p.id, p.tokens, p.codec) for p in clone.outstanding] == [
        (p.id, p.tokens, codec) for p in kept
    ]
    assert [clone.propose().tokens for _ in range(5)] == [algo.propose().tokens for _ in range(5)]
    clone.feedback(kept[0], 0.5)  # the caller's own objects are accepted after a restore
    restored = clone.outstanding_proposal(kept[1].id)  # looked up by id, as on resume
    assert restored is not None and restored.tokens == kept[1].tokens
    assert clone.outstanding_proposal(kept[0].id) is None  # answered
    assert clone.outstanding_proposal(99) is None  # never proposed


def test_load_state_dict_refuses_other_algorithms_and_other_spaces():
    codec = sn.encode(CODEC_SPACE)
    algo = algorithms.get("random", seed=0)
    algo.setup(codec)
    algo.propose()
    other = _recorder()
    with pytest.raises(ValueError, match=r"`state` must come from a '' algorithm, but got one"):
        other.load_state_dict(algo.state_dict())
    small = algorithms.get("random", seed=0)
    small.setup(sn.encode({"k": sn.oneof([3, 5])}))
    state = algo.state_dict()
    state["outstanding"][0]["tokens"] = [2, 1]  # not a sequence of the small space
    with pytest.raises(ValueError, match=r"token at position 0 must be in \[0, 2\)"):
        small.load_state_dict(state)
    with pytest.raises(RuntimeError, match=r"setup\(codec\) must be called first"):
        algorithms.get("random").load_state_dict(algo.state_dict())


# ---------------------------------------------------------------------- registry


def test_registry_lookup_and_errors(monkeypatch):
    monkeypatch.setattr(base, "_REGISTRY", base._REGISTRY.copy())
    assert algorithms.available() == sorted(algorithms.available())
    assert {"random", "evolution", "q_learning", "reinforce", "ppo"} <= set(algorithms.available())
    assert isinstance(algorithms.get("random", seed=2), RandomSearch)
    algo = algorithms.get("evolution", population_size=6, tournament_size=2, seed=1)
    assert (algo.population_size, algo.tournament_size, algo.seed) == (6, 2, 1)
    assert algorithms.get(algo) is algo
    with pytest.raises(ValueError, match=r"must not be given with an algorithm instance"):
        algorithms.get(algo, seed=3)
    with pytest.raises(
        ValueError, match=r"`algorithm` must be one of \[.*'random'.*\], but got 'x'"
    ):
        algorithms.get("x")
    with pytest.raises(TypeError, match=r"among \['population_size'.*but got 'population'"):
        algorithms.get("evolution", population=3)

    @algorithms.register("test_only_recorder")
    class Registered(_Recorder):
        pass

    assert Registered.name == "test_only_recorder"
    assert "test_only_recorder" in algorithms.available()
    assert algorithms.register("test_only_recorder")(Registered) is Registered  # idempotent
    with pytest.raises(
        ValueError, match=r"`name` must be a name no other algorithm is registered under, but got"
    ):
        algorithms.register("test_only_recorder")(_Recorder)


def test_repr_and_defaults():
    assert repr(RandomSearch(seed=4)) == "RandomSearch(seed=4)"
    algo = _recorder()
    assert algo.stats() == {} and algo.version == 0 and algo.learns


# ---------------------------------------------------------------------- PyGlove adapter


@pytest.mark.parametrize("name", ["random", "evolution", "q_learning", "reinforce", "ppo"])
def test_pg_sample_drives_any_algorithm(name):
    space = pg.Dict(
        block=sn.oneof([pg.Dict(k=sn.oneof([1, 3])), "pool"]),
        inputs=sn.subset([0, 1, 2], anchor=3),
        picks=sn.manyof(2, ["a", "b", "c"], sorted=True),
    )
    generator = algorithms.get(name, seed=0).as_dna_generator(space=space)
    values = []
    for i, (value, feedback) in enumerate(pg.sample(space, generator, num_examples=12)):
        values.append(value)
        if i % 4 == 3:
            feedback.skip()  # pg.sample's skip gives the algorithm no feedback
        else:
            feedback(float(value.picks[0] == "a"))
    algo = generator.algorithm
    assert isinstance(algo.codec, sn.Codec) and algo.codec.space is not None
    assert (algo.num_proposed, algo.num_feedback, len(algo.outstanding)) == (12, 9, 3)
    assert all(len(v.picks) == 2 for v in values)


def test_pg_sample_with_the_spec_alone():
    space = pg.Dict(k=sn.oneof([3, 5]), inputs=sn.subset([0, 1], anchor=2))
    generator = algorithms.get("evolution", seed=0).as_dna_generator()
    for value, feedback in pg.sample(space, generator, num_examples=6):
        feedback(float(value.k))
    algo = generator.algorithm
    assert algo.codec.space is None and algo.num_feedback == 6
    assert [d.kind for d in algo.codec.decisions] == ["categorical"] * 3
    assert len(algo.population) == 6
    assert all(r == algo.codec.decisions[0].values[t[0]] for t, r, _ in algo.population)
