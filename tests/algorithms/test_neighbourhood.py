"""The one-decision neighbourhood of ``algorithms/mutation.py``, pinned draw for draw.

The shipped learned-search agent (``nb201_c10.pt``) was trained on the moves of
``moves`` in their current order and labels, and local search, the random walk and
evolution replay a seed through the same draws. The digests below were recorded
from the code before ``moves``/``apply_move`` (then ``algorithms/neighbours.py``)
and local search's ``neighbours`` shared one implementation; a change to any move,
its order, a neighbour or an ``rng`` draw changes them.
"""

from __future__ import annotations

import hashlib
import json
import random

import pytest

import symbolic_nas as sn
from symbolic_nas import spaces
from symbolic_nas.algorithms.mutation import (
    labelled_neighbours,
    moves,
    mutate,
    mutate_with_floats,
    neighbours,
)
from symbolic_nas.testing import algorithm_test_spaces

PINNED = {
    "nasbench201": "0196b63ae70daae1",
    "zoph_le_cnn": "99c8e4e6cff826a1",
    "metaqnn": "8d019b4e8b629909",
    "categorical": "2a11ca30122c4a91",
    "conditional": "61817835c0dd3a97",
    "float": "2fe2f9c6a7c35c65",
    "picks": "212e5e6eb4b1cafa",
    "anchor": "1a9507a5f822b182",
    "skip": "ff41454a37e6e6b0",
}


def _codec(name: str) -> sn.Codec:
    test_spaces = algorithm_test_spaces()
    return sn.encode(test_spaces[name] if name in test_spaces else spaces.get(name))


@pytest.mark.parametrize("name", sorted(PINNED))
def test_moves_neighbours_and_mutations_are_pinned(name):
    codec = _codec(name)
    rng = random.Random(7)
    rows = []
    for _ in range(6):
        tokens = codec.random_tokens(rng)
        decisions, found = moves(codec, tokens)
        rows.append(
            [
                tokens,
                decisions,
                found,
                labelled_neighbours(codec, tokens, rng),
                neighbours(codec, tokens, rng),
                mutate(codec, tokens, rng),
                mutate_with_floats(codec, tokens, {}, rng),
            ]
        )
    digest = hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]
    assert digest == PINNED[name]


def test_nasbench201_moves_are_listed_edge_by_edge_then_op_by_op():
    codec = _codec("nasbench201")
    decisions, found = moves(codec, [0, 1, 2, 3, 4, 0])
    assert decisions == [0, 1, 2, 3, 4, 5]
    assert found[:6] == [(0, 1), (0, 2), (0, 3), (0, 4), (1, 0), (1, 2)]
    labelled = labelled_neighbours(codec, [0, 1, 2, 3, 4, 0], random.Random(0))
    assert [m for m, _ in labelled] == found
    assert labelled[-1] == ((5, 4), [0, 1, 2, 3, 4, 4])


def test_an_exact_k_member_has_one_flip_move_and_local_search_every_swap():
    codec = _codec("anchor")  # four members, exactly two chosen; then a two-way op
    tokens = codec.random_tokens(random.Random(0))
    assert tokens == [0, 1, 0, 1, 0]
    _, found = moves(codec, tokens)
    assert found == [(0, 1), (1, 0), (2, 1), (3, 0), (4, 1)]
    for (position, token), n in labelled_neighbours(codec, tokens, random.Random(0)):
        codec.validate(n)
        assert n[position] == token and sum(n[:4]) == 2
    swaps = [n for n in neighbours(codec, tokens, random.Random(0)) if n[4] == tokens[4]]
    expected = []
    for i in range(4):
        for j in range(i + 1, 4):
            if tokens[i] != tokens[j]:
                n = list(tokens)
                n[i], n[j] = n[j], n[i]
                expected.append(n)
    assert swaps == expected  # all four swaps, each listed once, at its earlier member
