"""PPO on the shared controller: the clipped objective, epochs, resume, learning."""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch

import symbolic_nas as sn
from symbolic_nas import algorithms
from symbolic_nas.algorithms.controller import Sample
from tests.helpers.codec import all_sequences
from tests.helpers.controller import reference_log_prob, skip_space, toy_space


def test_ppo_samples_from_the_same_controller_as_reinforce():
    codec = sn.encode(skip_space())
    ppo, reinforce = algorithms.get("ppo", seed=0), algorithms.get("reinforce", seed=0)
    ppo.setup(codec)
    reinforce.setup(codec)
    ours, theirs = ppo.controller.state_dict(), reinforce.controller.state_dict()
    assert list(ours) == list(theirs)
    assert all(torch.equal(ours[name], theirs[name]) for name in ours)
    # Before any update, the same seed proposes the same architectures.
    assert [ppo.propose().tokens for _ in range(6)] == [
        reinforce.propose().tokens for _ in range(6)
    ]
    # Both give every architecture the same probability, the paper's controller's (an
    # independent step-by-step oracle).
    sequences = all_sequences(codec)
    with torch.no_grad():
        log_probs = ppo.controller.score(sequences).log_prob.tolist()
        assert log_probs == reinforce.controller.score(sequences).log_prob.tolist()
    expected = [reference_log_prob(ppo.controller, tokens) for tokens in sequences]
    assert log_probs == pytest.approx(expected, abs=1e-5)


def test_clipped_surrogate_gradient_matches_the_hand_derivation():
    codec = sn.encode(toy_space())
    algo = algorithms.get("ppo", seed=1, epochs=1, clip=0.2, entropy_weight=0.05)
    algo.setup(codec)
    net = algo.controller
    sequences = [[0, 1, 2], [2, 2, 2], [1, 0, 0], [0, 0, 1], [2, 1, 0]]
    now = net.score(sequences).log_prob.detach()
    # ratios 1.5, 1.5, 2/3, 2/3, 1 against advantages +, -, +, -, +
    shifts = [math.log(1.5), math.log(1.5), -math.log(1.5), -math.log(1.5), 0.0]
    advantages = torch.tensor([1.0, -2.0, 0.5, -1.0, 0.3])
    samples = [
        Sample(s, float(lp) - shift, version=0, reward=0.0)
        for s, lp, shift in zip(sequences, now, shifts)
    ]
    snapshot = copy.deepcopy(net)
    algo._step(samples, advantages)
    # By hand: min(ρA, clip(ρ)A) is the clipped constant (no gradient) when ρA is the
    # larger one and ρ is outside [0.8, 1.2]: samples 0 (ρ = 1.5, A > 0) and
    # 3 (ρ = 2/3, A < 0). The others give -(1/m)·A·ρ·∇log π; plus -β·∇ mean H.
    coefficients = [0.0, 2.0 * 1.5, -0.5 * (2 / 3), 0.0, -0.3 * 1.0]
    scores = snapshot.score(sequences)
    target = sum(c / 5 * lp for c, lp in zip(coefficients, scores.log_prob))
    target = target - 0.05 * scores.entropy.mean()
    expected = torch.autograd.grad(target, list(snapshot.parameters()))
    for g, p in zip(expected, net.parameters()):
        torch.testing.assert_close(p.grad, g, atol=1e-6, rtol=1e-4)


def test_each_batch_takes_several_epochs_and_one_version():
    algo = algorithms.get("ppo", seed=0, batch_size=4, epochs=3, reward_memory=False)
    algo.setup(sn.encode(toy_space()))
    for _ in range(4):
        p = algo.propose()
        algo.feedback(p, float(sum(p.tokens)))
    assert algo.version == 1
    steps = {float(s["step"]) for s in algo._optimizer.state.values()}
    assert steps == {3.0}


def test_stale_samples_are_dropped_past_max_staleness():
    algo = algorithms.get("ppo", seed=0, batch_size=1, max_staleness=1, reward_memory=False)
    algo.setup(sn.encode(toy_space()))
    old = algo.propose()
    for r in (1.0, 2.0):
        algo.feedback(algo.propose(), r)
    algo.feedback(old, 3.0)
    assert algo.version == 2 and algo.stats()["dropped_stale"] == 1


def test_ppo_raises_the_probability_of_a_favoured_token():
    algo = algorithms.get("ppo", seed=0, reward_memory=False)
    codec = sn.encode(toy_space())
    algo.setup(codec, budget=120)
    sequences = all_sequences(codec)
    best = sequences.index([2, 2, 2])
    start = float(algo.controller.score(sequences).log_prob.detach().exp()[best])
    for _ in range(120):
        p = algo.propose()
        algo.feedback(p, float(p.tokens.count(2)))
    end = float(algo.controller.score(sequences).log_prob.detach().exp()[best])
    assert start < 0.06 and end > 0.5


def test_ppo_resumes_exactly_through_torch_save():
    codec = sn.encode(skip_space())
    algo = algorithms.get("ppo", seed=0, batch_size=3)
    algo.setup(codec, budget=60)
    for i in range(20):
        p = algo.propose()
        if i % 4:
            algo.feedback(p, float(sum(p.tokens)))
    buffer = io.BytesIO()
    torch.save(algo.state_dict(), buffer)
    buffer.seek(0)
    clone = algorithms.get("ppo", seed=0, batch_size=3)
    clone.setup(codec, budget=60)
    clone.load_state_dict(torch.load(buffer, weights_only=True))
    for _ in range(10):
        a, b = algo.propose(), clone.propose()
        assert a.tokens == b.tokens
        algo.feedback(a, float(sum(a.tokens)))
        clone.feedback(b, float(sum(b.tokens)))
    assert algo.stats() == clone.stats()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, r"`epochs` must be an int >= 1, but got 0"),
        ({"clip": 0.0}, r"`clip` must be a number in \(0, inf\), but got 0.0"),
        ({"sample_batch": 0}, r"`sample_batch` must be an int >= 1, but got 0"),
    ],
)
def test_bad_hyperparameters_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        algorithms.get("ppo", **kwargs)
