"""The "optuna" and "tpe" algorithms: Optuna's samplers through ask/tell."""

from __future__ import annotations

import io
import sys

import pytest
import torch

import symbolic_nas as sn
from symbolic_nas import algorithms
from symbolic_nas.algorithms.optuna_sampler import OptunaSearch, TPESearch
from symbolic_nas.nasbench import NasBench201
from symbolic_nas.validation import InvalidParameterError

optuna = pytest.importorskip("optuna")
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _save_load(state):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_tpe_proposes_what_optuna_itself_samples():
    """Oracle: same seed, same objective, categorical-only space -> same proposals."""
    bench = NasBench201()
    codec = bench.codec
    algo = algorithms.get("tpe", seed=3)
    algo.setup(codec, budget=40)
    ours = []
    for _ in range(40):
        p = algo.propose()
        ours.append(p.tokens)
        algo.feedback(p, bench.evaluate(p.tokens)["reward"])

    theirs = []

    def objective(trial):
        tokens = [
            trial.suggest_categorical(d.name, list(range(d.vocab_size))) for d in codec.decisions
        ]
        theirs.append(tokens)
        return bench.evaluate(tokens)["reward"]

    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=3), direction="maximize")
    study.optimize(objective, n_trials=40)
    assert ours == theirs
    assert len({tuple(t) for t in ours[10:]}) < 30  # past the startup trials TPE exploits


def test_conditional_decisions_are_asked_only_when_active():
    space = {
        "block": sn.oneof([{"k": sn.oneof([1, 3, 5])}, {"w": sn.oneof([8, 16])}, "pool"]),
        "act": sn.oneof(["relu", "gelu"]),
    }
    codec = sn.encode(space)
    algo = algorithms.get("optuna", sampler="random", seed=0)
    algo.setup(codec)
    for _ in range(20):
        p = algo.propose()
        active = {codec.decisions[d].name for d in codec.trace(p.tokens)}
        trial = algo.study.trials[p.meta["trial"]]
        assert set(trial.params) == active
        assert [trial.params[codec.decisions[d].name] for d in codec.trace(p.tokens)] == p.tokens
        algo.feedback(p, 1.0)


def test_floats_are_continuous_for_the_sampler_and_binned_in_tokens():
    codec = sn.encode({"lr": sn.floatv(1e-4, 1e-1, scale="log"), "k": sn.oneof([3, 5])})
    algo = algorithms.get("optuna", sampler="random", seed=0)
    algo.setup(codec)
    for _ in range(10):
        p = algo.propose()
        lr = p.meta["params"]["lr"]
        bins = codec.decisions[0].values
        nearest = min(range(len(bins)), key=lambda i: abs(torch.tensor(bins[i] / lr).log()))
        assert p.tokens[0] == nearest
        algo.feedback(p, 0.0)
    distribution = algo.study.trials[0].distributions["lr"]
    assert isinstance(distribution, optuna.distributions.FloatDistribution)
    assert distribution.log and (distribution.low, distribution.high) == (1e-4, 1e-1)


def test_masked_picks_take_the_nearest_allowed_token_and_forced_ones_are_not_asked():
    codec = sn.encode({"p": sn.manyof(2, ["a", "b", "c"]), "s": sn.manyof(1, [0, 1], sorted=True)})
    algo = algorithms.get("optuna", sampler="random", seed=0)
    algo.setup(codec)
    for _ in range(30):
        p = algo.propose()
        codec.validate(p.tokens)
        params = algo.study.trials[p.meta["trial"]].params
        first, second = params["p[0]"], params.get("p[1]")
        assert p.tokens[0] == first
        expected = (
            second if second != first else min({0, 1, 2} - {first}, key=lambda t: abs(t - first))
        )
        assert p.tokens[1] == expected
        algo.feedback(p, 0.5)
    from symbolic_nas.algorithms.optuna_sampler import _nearest

    assert _nearest([0, 2], 1) == 0 and _nearest([0, 3, 4], 2) == 3
    forced = sn.encode({"one": sn.manyof(2, ["x", "y"], sorted=True)})  # picks are forced
    algo.setup(forced)
    p = algo.propose()
    assert p.tokens == [0, 1] and algo.study.trials[0].params == {}


def test_feedback_in_any_order_and_failures_are_told_as_fail():
    algo = algorithms.get("tpe", seed=0)
    algo.setup(sn.encode({"a": sn.oneof(range(4)), "b": sn.oneof(range(4))}))
    proposals = [algo.propose() for _ in range(6)]
    for p in reversed(proposals[2:]):
        algo.feedback(p, float(p.id))
    algo.feedback(proposals[0], None)
    algo.feedback(proposals[1], float("nan"))
    states = {t.number: (t.state.name, t.value) for t in algo.study.trials}
    assert [p.meta["trial"] for p in proposals] == list(range(6))
    assert states == {
        0: ("FAIL", None),
        1: ("FAIL", None),
        **{i: ("COMPLETE", float(i)) for i in range(2, 6)},
    }
    assert algo.version == 4


@pytest.mark.parametrize(
    ("sampler", "options"),
    [("tpe", {"n_startup_trials": 4}), ("nsgaii", {"population_size": 4}), ("random", None)],
)
def test_resume_replays_the_trials_and_proposes_the_same(sampler, options):
    codec = sn.encode(
        {
            "block": sn.oneof([{"k": sn.oneof([1, 3, 5])}, "pool"]),
            "lr": sn.floatv(0.01, 1.0, scale="log"),
            "p": sn.manyof(2, ["a", "b", "c"]),
        }
    )

    def reward(p):
        return float(sum(p.tokens))

    algo = algorithms.get("optuna", sampler=sampler, sampler_options=options, seed=5)
    algo.setup(codec)
    outstanding = []
    for i in range(14):
        p = algo.propose()
        if i % 5 == 4:
            outstanding.append(p)
        elif i % 7 == 6:
            algo.feedback(p, None)
        else:
            algo.feedback(p, reward(p))
    state = _save_load(algo.state_dict())
    clone = algorithms.get("optuna", sampler=sampler, sampler_options=options, seed=5)
    clone.setup(codec)
    clone.load_state_dict(state)
    assert [t.state for t in clone.study.trials] == [t.state for t in algo.study.trials]
    assert [t.params for t in clone.study.trials] == [t.params for t in algo.study.trials]
    for p in outstanding:  # answered after the resume: told to the replayed RUNNING trials
        algo.feedback(p, reward(p))
        clone.feedback(clone.outstanding_proposal(p.id), reward(p))
    for _ in range(8):
        a, b = algo.propose(), clone.propose()
        assert (a.id, a.tokens, a.meta) == (b.id, b.tokens, b.meta)
        algo.feedback(a, reward(a))
        clone.feedback(b, reward(b))
    assert [t.value for t in clone.study.trials] == [t.value for t in algo.study.trials]


def test_a_state_of_another_sampler_or_space_is_refused():
    codec = sn.encode({"k": sn.oneof([3, 5])})
    tpe = algorithms.get("optuna", sampler="tpe", seed=0)
    tpe.setup(codec)
    tpe.feedback(tpe.propose(), 1.0)
    other = algorithms.get("optuna", sampler="random", seed=0)
    other.setup(codec)
    with pytest.raises(ValueError, match=r"`sampler` must match the saved algorithm's \('tpe'\)"):
        other.load_state_dict(tpe.state_dict())
    elsewhere = algorithms.get("optuna", sampler="tpe", seed=0)
    elsewhere.setup(sn.encode({"width": sn.oneof([3, 5])}))
    with pytest.raises(ValueError, match=r"no decision is named"):
        elsewhere.load_state_dict(tpe.state_dict())


def test_any_sampler_class_or_factory_and_clear_errors():
    codec = sn.encode({"k": sn.oneof([3, 5, 7])})
    algo = algorithms.get(
        "optuna", sampler=optuna.samplers.RandomSampler, seed=0
    )  # a class, called with seed=
    algo.setup(codec)
    assert isinstance(algo.study.sampler, optuna.samplers.RandomSampler)
    algo = OptunaSearch(
        sampler=lambda seed: optuna.samplers.TPESampler(seed=seed, n_startup_trials=2)
    )
    algo.setup(codec)
    assert algo.study.sampler._n_startup_trials == 2
    bad = OptunaSearch(sampler=lambda seed: "not a sampler")
    with pytest.raises(TypeError, match=r"`sampler` must return an optuna sampler"):
        bad.setup(codec)
    with pytest.raises(InvalidParameterError, match=r"`sampler` must be one of .*or a callable"):
        OptunaSearch(sampler=optuna.samplers.TPESampler(seed=0))  # an instance cannot start over
    with pytest.raises(InvalidParameterError, match=r"`sampler_options` must be a dict"):
        TPESearch(sampler_options=[("seed", 1)])
    assert repr(TPESearch(seed=2)) == "TPESearch(seed=2)"
    assert repr(OptunaSearch(sampler="gp")) == "OptunaSearch(sampler='gp', seed=0)"


def test_tpe_is_the_one_line_form_in_search():
    codec = sn.encode({"a": sn.oneof(range(3)), "b": sn.oneof(range(3))})
    result = sn.search(
        codec.space, lambda arch: float(arch["a"] + arch["b"]), algorithm="tpe", num_trials=12
    )
    assert result.algorithm == "tpe" and len(result.completed) == 12


def test_without_optuna_the_package_works_and_setup_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna now raises ImportError
    algo = algorithms.get("tpe", seed=0)  # constructing needs no Optuna
    with pytest.raises(ImportError, match=r"pip install 'symbolic-nas\[optuna\]'"):
        algo.setup(sn.encode({"k": sn.oneof([3, 5])}))
