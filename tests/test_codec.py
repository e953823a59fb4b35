"""The DNA encoder: decisions, tables, masks, tokens <-> DNA, errors."""

from __future__ import annotations

import collections
import itertools
import math
import random

import numpy as np
import pyglove as pg
import pytest

import symbolic_nas as sn
from tests.helpers.codec import all_sequences
from tests.helpers.models import issue_space


def test_decisions_of_a_conditional_space():
    codec = sn.encode(issue_space())
    d = codec.decisions
    assert [x.id for x in d] == [
        "",
        "[=0/2].blocks[0].kernel",
        "[=0/2].blocks[0].act",
        "[=1/2].blocks[1].kernel",
    ]
    assert d[0].name == "<root>" and d[0].labels == ("Net(width=16)", "Net(width=32)")
    assert [x.name for x in d[1:]] == ["blocks[0].kernel", "blocks[0].act", "blocks[1].kernel"]
    assert [(x.parent, x.parent_value) for x in d] == [(None, None), (0, 0), (0, 0), (0, 1)]
    assert [x.vocab_size for x in d] == [2, 2, 2, 3]
    assert d[2].values == ("relu", "gelu")
    assert all(x.kind == "categorical" for x in d)
    np.testing.assert_array_equal(codec.next_table, [[1, 3, -1], [2, 2, -1], [4, 4, -1], [4, 4, 4]])
    assert codec.start == 0 and codec.space_size == 7 and codec.max_length == 3


def test_tables_are_read_only_numpy_arrays():
    codec = sn.encode(issue_space())
    for table in (codec.next_table, codec.vocab_sizes, codec.parents, codec.parent_values):
        assert isinstance(table, np.ndarray)
        with pytest.raises(ValueError):
            table[0] = 1


def test_hints_are_kept():
    codec = sn.encode({"a": sn.oneof([1, 2], hints={"share": "kernel"}), "b": sn.oneof([3, 4])})
    assert codec.decisions[0].hints == {"share": "kernel"}
    assert codec.decisions[0].share_key == "kernel" and codec.decisions[1].share_key is None


def test_manyof_picks_follow_from_fn_order_pick_then_subtree():
    space = sn.manyof(2, [pg.Dict(x=sn.oneof([1, 2])), 7, 8])
    codec = sn.encode(space)
    assert [d.id for d in codec.decisions] == ["[0]", "[0][=0/3].x", "[1]", "[1][=0/3].x"]
    tokens = [0, 1, 2]  # pick 0 = candidate 0, its x = 2, pick 1 = candidate 2
    assert codec.materialize(tokens) == [{"x": 2}, 8]
    assert codec.from_tokens(tokens).to_numbers() == tokens


@pytest.mark.parametrize(
    ("distinct", "sorted_", "expected"),
    [
        (True, False, 3 * 2),
        (True, True, 3),
        (False, True, 6),
        (False, False, 9),
    ],
)
def test_manyof_masks_enumerate_exactly_the_valid_dna(distinct, sorted_, expected):
    codec = sn.encode(sn.manyof(2, ["a", "b", "c"], distinct, sorted_))
    sequences = all_sequences(codec)
    assert len(sequences) == expected == codec.space_size
    dnas = {str(codec.from_tokens(s)) for s in sequences}
    assert len(dnas) == expected  # every masked sequence is valid for PyGlove, none twice


def test_permutation_masks():
    codec = sn.encode(sn.permutate(["a", "b", "c"]))
    sequences = all_sequences(codec)
    assert sorted(sequences) == sorted(map(list, itertools.permutations(range(3))))
    with pytest.raises(ValueError, match=r"token at position 1 must be one of \[1, 2\].*distinct"):
        codec.validate([0, 0, 1])


def test_anchor_form_manyof_is_binary_with_exactly_k_ones():
    codec = sn.encode(sn.manyof(2, [0, 1, 2, 3], sorted=True, hints={"anchor": "L4"}))
    d = codec.decisions
    assert [x.kind for x in d] == ["subset"] * 4
    assert [x.source for x in d] == [0, 1, 2, 3] and {x.anchor for x in d} == {"L4"}
    sequences = all_sequences(codec)
    assert len(sequences) == math.comb(4, 2) == codec.space_size
    assert all(sum(s) == 2 for s in sequences)
    assert codec.materialize([0, 1, 0, 1]) == [1, 3]
    assert codec.from_tokens([0, 1, 0, 1]) == pg.DNA([1, 3])
    with pytest.raises(ValueError, match=r"exactly 2 of 4 members are chosen"):
        codec.validate([1, 1, 1, 0])


def test_anchor_form_requires_distinct_sorted_constant_candidates():
    with pytest.raises(ValueError, match=r"anchor form must be distinct and sorted"):
        sn.encode(sn.manyof(2, [0, 1, 2], hints={"anchor": 1}))
    with pytest.raises(ValueError, match=r"anchor form must be constants"):
        sn.encode(sn.manyof(1, [sn.oneof([1, 2]), 3], sorted=True, hints={"anchor": 1}))


def test_float_bins_linear_log_and_custom():
    codec = sn.encode(
        pg.Dict(
            lin=sn.floatv(0.0, 1.0),
            log=sn.floatv(1e-4, 1e-1, scale="log", hints={"bins": 4}),
            rlog=sn.floatv(0.1, 0.9, scale="rlog", hints={"bins": 3}),
        )
    )
    lin, log, rlog = codec.decisions
    assert lin.kind == "float" and lin.vocab_size == 10
    np.testing.assert_allclose(lin.values, np.linspace(0, 1, 10))
    np.testing.assert_allclose(log.values, [1e-4, 1e-3, 1e-2, 1e-1])
    assert rlog.values[0] == pytest.approx(0.1) and rlog.values[-1] == pytest.approx(0.9)
    assert np.diff(rlog.values)[0] > np.diff(rlog.values)[1]  # dense near the top
    assert codec.space_size == math.inf
    tokens = [9, 1, 2]
    assert codec.materialize(tokens) == {"lin": 1.0, "log": pytest.approx(1e-3), "rlog": 0.9}
    dna = codec.from_tokens(tokens)
    assert codec.to_tokens(dna) == tokens
    off_grid = pg.DNA([0.52, 0.0011, 0.2], spec=codec.spec)
    assert codec.to_tokens(off_grid) == [5, 1, 0]  # nearest bin on each scale


@pytest.mark.parametrize("scale", [None, "log", "rlog"])
@pytest.mark.parametrize(("low", "high"), [(0.1, 0.9), (3e-6, 0.7), (0.013, 41.0), (1.0, 1e4)])
def test_every_float_bin_lies_in_its_range_and_round_trips_through_pyglove(scale, low, high):
    codec = sn.encode(pg.Dict(x=sn.floatv(low, high, scale=scale, hints={"bins": 7})))
    values = codec.decisions[0].values
    assert values[0] == low and values[-1] == high  # exact ends, not rounded ones
    assert all(low <= v <= high for v in values) and list(values) == sorted(values)
    for token in range(7):
        dna = codec.from_tokens([token])  # PyGlove checks the range
        assert codec.to_tokens(dna) == [token]
        assert codec.materialize([token]) == {"x": values[token]}


def test_nearest_bin_of_an_rlog_float_measures_distance_from_the_top():
    codec = sn.encode(pg.Dict(x=sn.floatv(0.1, 0.9, scale="rlog", hints={"bins": 3})))
    _, mid, high = codec.decisions[0].values  # 0.1, 0.7, 0.9: rlog is dense near the top
    # 0.81 is closer to 0.9 on a linear scale, but its distance from the top (1.0 - 0.81
    # = 0.19) is nearer 0.3 (= 1.0 - 0.7) than 0.1 (= 1.0 - 0.9) on a log scale.
    assert mid == pytest.approx(0.7) and abs(0.81 - high) < abs(0.81 - mid)
    assert codec.to_tokens(pg.DNA(0.81, spec=codec.spec)) == [1]
    assert codec.to_tokens(pg.DNA(0.84, spec=codec.spec)) == [2]
    assert codec.to_tokens(pg.DNA(0.2, spec=codec.spec)) == [0]


@pytest.mark.parametrize(
    "placeholder",
    [
        lambda: sn.manyof(2, [0, 1, 2, 3], distinct=True, sorted=True),
        lambda: sn.manyof(2, [0, 1, 2, 3], distinct=False, sorted=True),
        lambda: sn.manyof(2, [0, 1, 2, 3], distinct=True, sorted=False),
        lambda: sn.manyof(2, [0, 1, 2, 3], sorted=True, hints={"anchor": "k"}),
        lambda: sn.permutate([0, 1, 2]),
    ],
    ids=["distinct-sorted", "sorted", "distinct", "anchor", "permutate"],
)
def test_random_tokens_draw_manyof_as_pyglove_random_dna_does(placeholder):
    # Uniform at each step would favour late candidates of sorted picks ([2, 3] a third
    # of the time instead of a sixth): each group is drawn as a whole instead.
    space = pg.Dict(x=placeholder())
    codec, spec = sn.encode(space), pg.dna_spec(space)
    n = 1500  # pg.random_dna costs ~3 ms a draw
    rng = random.Random(0)
    ours = collections.Counter(tuple(codec.random_tokens(rng)) for _ in range(n))
    theirs = collections.Counter(tuple(codec.to_tokens(pg.random_dna(spec, rng))) for _ in range(n))
    assert set(ours) == set(theirs)
    distance = sum(abs(ours[k] - theirs[k]) for k in theirs) / (2 * n)
    assert distance < 0.07, (ours, theirs)  # uniform at each step: 0.13 to 0.25


def test_step_api_walks_and_masks():
    codec = sn.encode(issue_space())
    step = codec.next_decision([])
    assert step.decision.index == 0 and step.valid_tokens == [0, 1]
    assert codec.next_decision([1]).decision.id == "[=1/2].blocks[1].kernel"
    assert codec.next_decision([1, 2]) is None
    walker = codec.walker()
    walker.push(0)
    assert walker.current.id == "[=0/2].blocks[0].kernel"
    walker.push(1)
    walker.push(0)
    assert walker.done and walker.tokens == [0, 1, 0]
    with pytest.raises(ValueError, match="complete"):
        walker.push(0)


def test_trace_and_decode():
    codec = sn.encode(issue_space())
    assert codec.trace([0, 1, 1]) == [0, 1, 2]
    assert codec.decode([0, 1, 1]) == {
        "<root>": "Net(width=16)",
        "blocks[0].kernel": 5,
        "blocks[0].act": "gelu",
    }


@pytest.mark.parametrize(
    ("tokens", "pattern"),
    [
        ([2], r"token at position 0 must be in \[0, 2\) for decision '<root>', but got 2"),
        ([1, -1], r"token at position 1 must be in \[0, 3\).*but got -1"),
        ([0, 1], r"token sequence too short: got 2 tokens, but decision 'blocks\[0\]\.act'"),
        ([1, 2, 0], r"token sequence too long: the space ends after 2 tokens, but got 3"),
        ([1, 1.0], r"token at position 1 must be an int, but got 1.0"),
        ([], r"token sequence too short: got 0 tokens"),
    ],
)
def test_bad_tokens_name_position_value_and_vocabulary(tokens, pattern):
    codec = sn.encode(issue_space())
    assert not codec.is_valid(tokens)
    with pytest.raises(ValueError, match=pattern):
        codec.validate(tokens)


def test_dna_from_another_space_is_rejected():
    codec = sn.encode(issue_space())
    other = sn.encode(pg.Dict(a=sn.oneof([1, 2, 3]), b=sn.oneof([1, 2])))
    with pytest.raises(ValueError, match=r"`dna` must belong to this space, but it is bound"):
        codec.to_tokens(other.from_tokens([2, 1]))
    with pytest.raises(ValueError, match=r"`dna` must belong to this space, but .* does not fit"):
        codec.to_tokens(pg.DNA([2, 1]))
    with pytest.raises(TypeError, match=r"`dna` must be a pg.DNA"):
        codec.to_tokens([1, 2])


def test_equal_spec_from_another_encode_is_accepted():
    dna = sn.encode(issue_space()).from_tokens([1, 0])
    assert sn.encode(issue_space()).to_tokens(dna) == [1, 0]


def test_unsupported_placeholder_and_empty_space():
    evolvable = pg.Dict(a=pg.evolve(pg.Dict(x=1), lambda k, v, p: v))
    with pytest.raises(TypeError, match=r"unsupported placeholder"):
        sn.encode(evolvable)
    with pytest.raises(ValueError, match=r"must hold at least one placeholder"):
        sn.encode({"a": 1})
    with pytest.raises(TypeError, match=r"use sn.annotate"):
        import torch.nn as nn

        sn.encode(nn.Linear(2, 2))


def test_random_tokens_are_valid_seeded_and_cover_the_space():
    codec = sn.encode(issue_space())
    a = [codec.random_tokens(random.Random(5)) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    seen = {tuple(codec.random_tokens(random.Random(i))) for i in range(300)}
    assert len(seen) == codec.space_size == 7
    assert codec.random_tokens(3) == codec.random_tokens(random.Random(3))


def test_chains_of_conditional_choices_round_trip():
    # Regression: PyGlove writes a chain of conditional choices as a flat tuple.
    space = pg.Dict(body=sn.oneof([sn.oneof([sn.oneof([0, 1])]), 2]), top=sn.oneof(["x", "y"]))
    codec = sn.encode(space)
    for dna in codec.spec.iter_dna():
        assert codec.from_tokens(codec.to_tokens(dna)) == dna


@pytest.mark.parametrize("tokens", [None, "01", 3])
def test_validate_names_the_parameter_when_tokens_are_not_a_sequence(tokens):
    codec = sn.encode({"k": sn.oneof([1, 2])})
    with pytest.raises(
        ValueError, match=rf"^`tokens` must be a sequence of ints, but got {tokens!r}$"
    ):
        codec.validate(tokens)
    assert not codec.is_valid(tokens)
