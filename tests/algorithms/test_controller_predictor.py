"""The controllers' predictor screening (``predictor=True``, off in ``zoph_le_2017``)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

import symbolic_nas as sn
from symbolic_nas import algorithms, spaces
from symbolic_nas.validation import InvalidParameterError


def _additive() -> sn.Codec:
    return sn.encode([sn.oneof(list(range(5))) for _ in range(6)])


def test_on_by_default_and_off_in_the_paper_preset():
    assert algorithms.get("reinforce").config.predictor
    assert algorithms.get("ppo").config.predictor
    assert not algorithms.get("reinforce", preset="zoph_le_2017").config.predictor


@pytest.mark.parametrize("name", ["reinforce", "ppo"])
def test_screening_starts_after_the_warmup_and_picks_among_fresh_samples(name):
    codec = _additive()
    algo = algorithms.get(name, seed=0, predictor_warmup=6, predictor_candidates=16)
    algo.setup(codec, budget=60)
    calls: list[int] = []
    sample = algo.controller.sample
    algo.controller.sample = lambda n, g: calls.append(n) or sample(n, g)
    seen = set()
    for i in range(40):
        calls.clear()
        p = algo.propose()
        assert ("predicted" in p.meta) == (i >= 6)
        if i >= 6:
            assert calls == [16] and tuple(p.tokens) not in seen
        seen.add(tuple(p.tokens))
        algo.feedback(p, float(sum(p.tokens)))
    assert algo.stats()["predictor_fits"] >= 4


def test_screening_beats_the_unscreened_controller_early():
    codec = _additive()

    def mean_reward(**kwargs) -> float:
        out = []
        for seed in range(3):
            algo = algorithms.get("reinforce", seed=seed, **kwargs)
            algo.setup(codec, budget=50)
            for _ in range(50):
                p = algo.propose()
                algo.feedback(p, float(sum(p.tokens)))
                out.append(float(sum(p.tokens)))
        return float(np.mean(out))

    assert mean_reward() > mean_reward(predictor=False) + 1.0


def test_learning_from_predicted_rewards_fills_the_buffer():
    codec = _additive()
    algo = algorithms.get("reinforce", seed=0, predictor_warmup=4, predicted_rewards=3)
    algo.setup(codec, budget=40)
    for _ in range(4):
        p = algo.propose()
        algo.feedback(p, float(sum(p.tokens)))
    assert len(algo._buffer) == algo._buffered_real == 4
    algo.propose()  # screened: three predicted samples join the buffer
    assert len(algo._buffer) - algo._buffered_real == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"predictor_candidates": 1}, "`predictor_candidates` must be an int >= 2, but got 1"),
        ({"predictor_warmup": 0}, "`predictor_warmup` must be an int >= 2, but got 0"),
        ({"predictor_acquisition": "ucb"}, "`predictor_acquisition` must be"),
        ({"predicted_rewards": -1}, "`predicted_rewards` must be an int >= 0, but got -1"),
        ({"predictor": "yes"}, "`predictor` must be"),
    ],
)
def test_bad_predictor_settings_are_named(kwargs, message):
    with pytest.raises(InvalidParameterError, match=message):
        algorithms.get("reinforce", **kwargs)


@pytest.mark.parametrize("name", ["reinforce", "ppo"])
def test_resume_replays_exactly_through_torch_save(name):
    codec = sn.encode(spaces.get("zoph_le_cnn"))
    kwargs = {"seed": 3, "predictor_warmup": 5, "predictor_refit": 3, "predicted_rewards": 2}

    def run(split: int | None) -> list[list[int]]:
        algo = algorithms.get(name, **kwargs)
        algo.setup(codec, budget=40)
        out, pending = [], []
        for i in range(40):
            if i == split:
                buffer = io.BytesIO()
                torch.save(algo.state_dict(), buffer)
                buffer.seek(0)
                algo = algorithms.get(name, **kwargs)
                algo.setup(codec, budget=40)
                algo.load_state_dict(torch.load(buffer, weights_only=True))
                pending = [algo.outstanding_proposal(p.id) for p in pending]
            pending.append(algo.propose())
            out.append(pending[-1].tokens)
            if i % 3 != 1:  # two workers' worth of outstanding proposals, answered late
                p = pending.pop(0)
                algo.feedback(p, None if p.id == 7 else float(sum(p.tokens) % 13))
        return out

    assert run(None) == run(22)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["reinforce", "ppo"])
@pytest.mark.parametrize("space", ["zoph_le_cnn", "metaqnn"])
def test_runs_a_few_hundred_trials_on_conditional_spaces(name, space):
    codec = sn.encode(spaces.get(space))
    # Fewer candidates and refits than the defaults: the test checks validity, not speed.
    algo = algorithms.get(name, seed=0, predictor_candidates=8, predictor_refit=25)
    algo.setup(codec, budget=200)
    batch, screened = [], 0
    for i in range(200):
        batch.append(algo.propose())
        screened += "predicted" in batch[-1].meta
        if len(batch) == 4 or i == 199:
            for p in batch[::-1]:
                codec.validate(p.tokens)
                algo.feedback(p, None if p.id % 40 == 0 else float(sum(p.tokens) % 17))
            batch = []
    # Screened from the 10th reward on (unless none of the 8 samples is new: then the
    # controller's own draw); refits every 25 rewards (and 5 % of the history).
    assert algo.num_feedback == 200 and screened > 50  # else no sample was fresh
    assert algo.stats()["predictor_fits"] >= 3
