"""The controller family's config, records and mask rules: declared once, checked once."""

from __future__ import annotations

import dataclasses
import math

import pytest

import symbolic_nas as sn
from symbolic_nas import algorithms
from symbolic_nas.algorithms.controller import (
    PPO,
    ControllerConfig,
    PPOConfig,
    Reinforce,
    ReinforceConfig,
    RewardMemory,
    Sample,
)
from symbolic_nas.space.decisions import MaskRule
from symbolic_nas.validation import InvalidParameterError, invalid_values
from tests.helpers.controller import ALL_SPACES, group_space, skip_space, toy_space


def _invalid_cases():
    for cls in (Reinforce, PPO):
        for name, constraints in cls._parameter_constraints.items():
            for value in invalid_values(constraints):
                yield pytest.param(cls, name, value, id=f"{cls.name}-{name}-{value!r}"[:60])


@pytest.mark.parametrize(("cls", "name", "value"), list(_invalid_cases()))
def test_every_declared_parameter_rejects_its_invalid_values(cls, name, value):
    with pytest.raises(InvalidParameterError, match=rf"^`{name}` must be .*, but got "):
        cls(**{name: value})


def test_parameter_constraints_come_from_the_config_fields():
    for cls, config in ((Reinforce, ReinforceConfig), (PPO, PPOConfig)):
        fields = [f.name for f in dataclasses.fields(config)]
        assert list(cls._parameter_constraints) == ["seed", "preset", "config", *fields]
    assert set(ControllerConfig.constraints()) < set(ReinforceConfig.constraints())
    assert {"epochs", "clip"} <= set(PPOConfig.constraints())
    assert "max_importance_weight" not in PPOConfig.constraints()


def test_presets_and_overrides():
    paper = ReinforceConfig.from_preset("zoph_le_2017")
    defaults = ReinforceConfig()
    changed = {k for k, v in paper.settings().items() if defaults.settings()[k] != v}
    assert changed == {
        "learning_rate",
        "baseline_decay",
        "normalize_advantage",
        "tanh_constant",
        "reward_transform",
        "reward_memory",
        "predictor",
    }
    assert ReinforceConfig.from_preset("zoph_le_2017", batch_size=16) == paper.override(
        batch_size=16
    )
    assert (PPOConfig().learning_rate, ReinforceConfig().learning_rate) == (0.003, "auto")
    with pytest.raises(InvalidParameterError, match=r"^`preset` must be None, but got 'x'"):
        PPOConfig.from_preset("x")
    with pytest.raises(TypeError, match=r"ReinforceConfig has no hyperparameter 'lr'; its"):
        ReinforceConfig().override(lr=0.1)


def test_a_config_is_frozen_and_holds_plain_numbers():
    config = ReinforceConfig(learning_rate=1, init_range=1, batch_size=2)
    assert type(config.learning_rate) is float and type(config.init_range) is float
    assert type(config.batch_size) is int
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.batch_size = 3
    for bad in (math.inf, -math.inf, math.nan):
        with pytest.raises(InvalidParameterError, match=r"`temperature` must be a number in"):
            ControllerConfig(temperature=bad)


def test_the_algorithm_reads_its_config():
    algo = algorithms.get("reinforce", seed=0, preset="zoph_le_2017", batch_size=None)
    assert algo.config == ReinforceConfig.from_preset("zoph_le_2017")
    assert algo.batch_size == 8 and algo.max_importance_weight == 1.0  # None: the preset's
    given = ReinforceConfig(batch_size=4, reward_memory=False)
    other = algorithms.get("reinforce", seed=0, config=given, sample_batch=2)
    assert other.config == given.override(sample_batch=2) and other.sample_batch == 2
    with pytest.raises(AttributeError, match=r"no attribute 'epochs'"):
        _ = other.epochs
    with pytest.raises(InvalidParameterError, match=r"^`preset` must be None when `config`"):
        algorithms.get("reinforce", preset="zoph_le_2017", config=given)
    with pytest.raises(
        InvalidParameterError,
        match=r"^`config` must be None or a ReinforceConfig, but got PPOConfig",
    ):
        algorithms.get("reinforce", config=PPOConfig())
    with pytest.raises(TypeError, match=r"PPOConfig has no hyperparameter 'max_importance_w"):
        algorithms.get("ppo", max_importance_weight=2.0)


def test_a_config_and_the_same_keywords_give_the_same_run():
    codec = sn.encode(skip_space())
    config = ReinforceConfig.from_preset("zoph_le_2017", batch_size=3, learning_rate=0.05)
    runs = []
    for algo in (
        algorithms.get("reinforce", seed=4, config=config),
        algorithms.get(
            "reinforce", seed=4, preset="zoph_le_2017", batch_size=3, learning_rate=0.05
        ),
    ):
        algo.setup(codec)
        tokens = []
        for _ in range(12):
            p = algo.propose()
            tokens.append(p.tokens)
            algo.feedback(p, float(sum(p.tokens)))
        runs.append((tokens, algo.stats()))
    assert runs[0] == runs[1]


# ---------------------------------------------------------------------- records


def test_reward_memory_means_and_exhaustion():
    memory = RewardMemory(space_size=None)
    memory.add([1, 2], 1.0)
    memory.add((1, 2), 4.0)
    assert memory.recall([1, 2]) == 2.5 and memory.recall([2, 1]) is None
    clone = RewardMemory(space_size=None)
    clone.load(memory.state())
    assert clone.state() == memory.state() == [[[1, 2], 5.0, 2]]
    small = RewardMemory(space_size=2)
    small.add([0], 1.0)
    assert small.recall([0]) == 1.0
    small.add([1], 1.0)
    assert small.recall([0]) is None and len(small) == 2


def test_the_algorithm_state_keeps_its_json_format():
    # Checkpoints written before samples were dataclasses load, and new ones look alike.
    algo = algorithms.get("reinforce", seed=0, batch_size=4, sample_batch=5)
    algo.setup(sn.encode(toy_space()))
    for i in range(4):
        p = algo.propose()
        if i != 1:
            algo.feedback(p, float(i))
    state = algo.state_dict()["algorithm"]
    assert state["queue"] and state["buffer"]
    assert all(set(s) == {"tokens", "log_prob", "version"} for s in state["queue"])
    assert all(set(s) == {"tokens", "log_prob", "version", "reward"} for s in state["buffer"])
    assert all(isinstance(s, Sample) for s in algo._buffer)
    assert [Sample.from_dict(s) for s in state["buffer"]] == algo._buffer
    assert state["memory"] == algo._memory.state() and len(state["memory"]) == 3


# ---------------------------------------------------------------------- mask rules


@pytest.mark.parametrize("name", sorted(ALL_SPACES))
def test_a_free_decision_is_never_masked_and_a_constrained_one_is(name):
    codec = sn.encode(ALL_SPACES[name]())
    restricted: dict[int, bool] = {}

    def walk(prefix: list[int]) -> None:
        step = codec.next_decision(prefix)
        if step is None:
            return
        d = step.decision.index
        restricted[d] = restricted.get(d, False) or not step.mask.all()
        for token in step.valid_tokens:
            walk([*prefix, token])

    walk([])
    for d, was_restricted in restricted.items():
        decision = codec.decisions[d]
        if decision.mask_rule is MaskRule.FREE:
            assert not was_restricted, decision.name
        elif decision.group_index > 0:  # restricted by the group's earlier tokens
            assert was_restricted, decision.name


def test_the_controller_walks_exactly_the_constrained_decisions():
    rules = set()
    for space in (group_space, skip_space, toy_space):
        codec = sn.encode(space())
        algo = algorithms.get("reinforce", seed=0)
        algo.setup(codec)
        expected = [d.mask_rule is not MaskRule.FREE for d in codec.decisions]
        assert list(algo.controller._constrained) == expected
        rules |= {d.mask_rule for d in codec.decisions}
    assert rules == set(MaskRule)
