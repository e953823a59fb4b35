"""The LSTM controller: valid samples, exact log-probabilities, skip attention, heads."""

from __future__ import annotations

import collections
import math

import numpy as np
import pytest
import torch

import symbolic_nas as sn
from symbolic_nas.algorithms.controller import Controller
from tests.helpers.codec import all_sequences
from tests.helpers.controller import (
    ALL_SPACES,
    conditional_space,
    reference_log_prob,
    skip_space,
    toy_space,
)


@pytest.mark.parametrize("name", sorted(ALL_SPACES))
def test_samples_are_valid_and_their_log_prob_is_recomputed_exactly(name):
    codec = sn.encode(ALL_SPACES[name]())
    net = Controller(codec, seed=1, temperature=1.3, tanh_constant=2.0, init_range=0.5)
    samples = net.sample(24, torch.Generator().manual_seed(0))
    sequences = [tokens for tokens, _ in samples]
    assert all(codec.is_valid(s) for s in sequences)
    scored = net.score(sequences).log_prob.detach().numpy()
    np.testing.assert_allclose(scored, [lp for _, lp in samples], atol=1e-5)
    for tokens, log_prob in samples[:6]:  # an independent, unbatched float64 oracle
        assert reference_log_prob(net, tokens) == pytest.approx(log_prob, abs=1e-5)


@pytest.mark.parametrize("name", sorted(ALL_SPACES))
def test_probabilities_of_all_valid_sequences_sum_to_one(name):
    codec = sn.encode(ALL_SPACES[name]())
    sequences = all_sequences(codec)
    net = Controller(codec, seed=2, init_range=0.6, tanh_constant=1.5)
    total = net.score(sequences).log_prob.detach().double().exp().sum()
    assert float(total) == pytest.approx(1.0, abs=1e-5)


def test_sampling_frequencies_match_the_policy():
    # Pins that the *sampled* token (not the argmax) is fed back: the joint
    # frequencies match the teacher-forced probabilities of whole sequences.
    codec = sn.encode([sn.oneof([0, 1, 2]) for _ in range(2)])
    net = Controller(codec, seed=3, init_range=1.0)
    sequences = all_sequences(codec)
    expected = net.score(sequences).log_prob.detach().double().exp().numpy()
    counts = collections.Counter(
        tuple(t) for t, _ in net.sample(6000, torch.Generator().manual_seed(1))
    )
    observed = np.array([counts[tuple(s)] for s in sequences]) / 6000
    assert np.abs(observed - expected).sum() / 2 < 0.03  # total variation
    assert expected.max() > 2 * expected.min()  # a policy far from uniform


def test_skip_probability_is_a_true_sigmoid_of_the_attention_score():
    codec = sn.encode(skip_space())
    net = Controller(codec, seed=4, init_range=0.5)
    # k0 | layer 1: member(source 0), k1 | layer 2: members(sources 0, 1), k2 | out: 0, 1, 2
    tokens = [1, 1, 0, 0, 1, 1, 1, 0, 1]
    decisions = codec.trace(tokens)
    with torch.no_grad():
        inputs = [net.start[0]]
        for d, t in zip(decisions[:-1], tokens[:-1]):
            inputs.append(net.embedding[int(net._emb_offset[d]) + t])
        h = net.lstm(torch.stack(inputs).unsqueeze(1))[0][:, 0]
        steps = net.score([tokens]).step_log_prob[0].exp()

        def p(source, current):
            score = net.v @ torch.tanh(net.w_prev @ source + net.w_curr @ current)
            return float(1 / (1 + torch.exp(-score)))  # sigmoid(q), not ENAS's sigmoid(2q)

        fallback0 = net.fallback[net._slots[0]]
        # Layer 1's member (position 1, source 0): layer 0 has no anchor -> fallback;
        # its anchor step is position 1 itself.
        assert float(steps[1]) == pytest.approx(p(fallback0, h[1]), abs=1e-5)
        # Layer 2 (anchor step at position 3): source 0 -> fallback, token 0 chosen;
        # source 1 -> layer 1's stored anchor h[1], token 1 chosen.
        assert float(steps[3]) == pytest.approx(1 - p(fallback0, h[3]), abs=1e-5)
        assert float(steps[4]) == pytest.approx(p(h[1], h[3]), abs=1e-5)
        # The exact-2 output group (anchor step at 6) sees layers 1 and 2's anchors.
        assert float(steps[6]) == pytest.approx(p(fallback0, h[6]), abs=1e-5)
        assert float(steps[7]) == pytest.approx(1 - p(h[1], h[6]), abs=1e-5)
        assert float(steps[8]) == pytest.approx(1.0, abs=1e-6)  # forced: 2 of 3 chosen
        # The skip-rate penalty and statistic use the unmasked sigmoid of every member.
        probs = [
            p(fallback0, h[1]),
            p(fallback0, h[3]),
            p(h[1], h[3]),
            p(fallback0, h[6]),
            p(h[1], h[6]),
            p(h[3], h[6]),
        ]
        q = 0.3
        kl = sum(x * math.log(x / q) + (1 - x) * math.log((1 - x) / (1 - q)) for x in probs)
        scores = net.score([tokens], skip_target=q)
        assert float(scores.skip_kl[0]) == pytest.approx(kl, abs=1e-5)
        assert float(scores.skip_rate[0]) == pytest.approx(sum(probs) / 6, abs=1e-6)


def test_the_fallback_vector_only_moves_members_without_a_stored_anchor():
    codec = sn.encode(skip_space())
    net = Controller(codec, seed=5, init_range=0.5)
    tokens = [1, 1, 0, 0, 1, 1, 1, 0, 1]
    before = net.score([tokens]).step_log_prob[0].detach()
    with torch.no_grad():
        net.fallback[net._slots[0]] += 1.0
    after = net.score([tokens]).step_log_prob[0].detach()
    changed = sorted(int(i) for i in torch.nonzero((after - before).abs() > 1e-6))
    assert changed == [1, 3, 6]  # exactly the members whose source is 0


def test_heads_are_shared_by_share_key_and_vocabulary_size():
    codec = sn.encode(
        [
            sn.oneof([1, 2, 3], hints={"share": "k"}),
            sn.oneof([4, 5, 6], hints={"share": "k"}),
            sn.oneof([1, 2], hints={"share": "k"}),  # other size: own head
            sn.oneof([7, 8, 9]),
        ]
    )
    net = Controller(codec, seed=0)
    assert net.num_heads == 3
    assert net._head_of[0] == net._head_of[1] != net._head_of[2]
    assert net._emb_offset[0] == net._emb_offset[1]


def test_construction_and_sampling_leave_torch_global_rng_alone():
    state = torch.random.get_rng_state()
    net = Controller(sn.encode(conditional_space()), seed=0)
    net.sample(4, torch.Generator().manual_seed(0))
    net.score([net.sample(1, torch.Generator())[0][0]]).log_prob.sum().backward()
    assert torch.equal(state, torch.random.get_rng_state())


def test_same_seed_same_weights_and_samples():
    codec = sn.encode(toy_space())
    a, b = Controller(codec, seed=7), Controller(codec, seed=7)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert a.sample(5, torch.Generator().manual_seed(3)) == b.sample(
        5, torch.Generator().manual_seed(3)
    )
    c = Controller(codec, seed=8)
    assert not torch.equal(a.head_weight, c.head_weight)


def test_bad_arguments_and_sequences_are_named():
    codec = sn.encode(toy_space())
    with pytest.raises(ValueError, match=r"`hidden_size` must be an int >= 1, but got 0"):
        Controller(codec, hidden_size=0)
    with pytest.raises(
        ValueError, match=r"`temperature` must be a number in \(0, inf\), but got 0.0"
    ):
        Controller(codec, temperature=0.0)
    with pytest.raises(ValueError, match=r"`tanh_constant` must be a number in \[0, inf\)"):
        Controller(codec, tanh_constant=-1.0)
    with pytest.raises(TypeError, match=r"`codec` must be a symbolic_nas Codec"):
        Controller("space")
    net = Controller(codec)
    with pytest.raises(ValueError, match=r"token sequence too short"):
        net.score([[0, 1]])
    with pytest.raises(ValueError, match=r"token at position 2 must be in \[0, 3\)"):
        net.score([[0, 1, 3]])
    picks = Controller(sn.encode(sn.manyof(2, ["a", "b", "c"], sorted=True)))
    with pytest.raises(ValueError, match=r"token at position 1 must be one of \[2\]"):
        picks.score([[1, 0]])
    with pytest.raises(ValueError, match=r"`n` must be an int >= 1"):
        net.sample(0, torch.Generator())
