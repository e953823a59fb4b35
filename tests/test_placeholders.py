"""Placeholders: PyGlove's primitives with clear errors, plus intv and subset."""

from __future__ import annotations

import pyglove as pg
import pytest

import symbolic_nas as sn


def test_reexports_are_pyglove_primitives():
    assert isinstance(sn.oneof([1, 2]), pg.hyper.OneOf)
    assert isinstance(sn.manyof(2, [1, 2, 3]), pg.hyper.ManyOf)
    assert isinstance(sn.floatv(0.1, 1.0), pg.hyper.Float)
    assert isinstance(sn.permutate([1, 2, 3]), pg.hyper.ManyOf)


def test_intv_is_inclusive_on_both_ends():
    space = sn.intv(2, 5)
    assert list(space.candidates) == [2, 3, 4, 5]
    codec = sn.encode({"depth": space})
    assert codec.decisions[0].values == (2, 3, 4, 5)
    assert codec.materialize([3]) == {"depth": 5}
    assert list(sn.intv(7, 7).candidates) == [7]


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: sn.oneof([]), r"`candidates` of oneof must be a non-empty list, but got \[\]"),
        (
            lambda: sn.oneof("abc"),
            r"`candidates` of oneof must be a list of values or a dict from names to values, "
            r"but got 'abc'",
        ),
        (
            lambda: sn.manyof(4, [1, 2, 3]),
            r"`k` of manyof must be <= the number of candidates \(3\)",
        ),
        (lambda: sn.manyof(0, [1, 2]), r"`k` of manyof must be an int >= 1, but got 0"),
        (lambda: sn.manyof(2, []), r"`candidates` of manyof must be a non-empty list"),
        (lambda: sn.permutate([]), r"`candidates` of permutate must be a non-empty list"),
        (lambda: sn.floatv(1.0, 0.5), r"`low` of floatv must be < `high` \(0.5\), but got 1.0"),
        (lambda: sn.floatv(0.0, 1.0, scale="log"), r"`low` of floatv must be > 0 with scale='log'"),
        (lambda: sn.floatv(0.1, 1.0, scale="cubic"), r"`scale` of floatv must be one of"),
        (lambda: sn.floatv(0.1, 1.0, hints={"bins": 1}), r"`hints\['bins'\]` of floatv must be"),
        (lambda: sn.intv(5, 2), r"`low` of intv must be <= `high` \(2\), but got 5"),
        (lambda: sn.intv(1.5, 2), r"`low` of intv must be an int, but got 1.5"),
        (lambda: sn.intv(0, 10**6), r"the range of intv must hold at most 100000 integers"),
        (lambda: sn.subset([]), r"`candidates` of subset must be a non-empty list"),
        (
            lambda: sn.oneof([1, 2], hints="share"),
            r"`hints` of oneof must be a dict or None \(such as \{'share': 'ops'\}\), "
            r"but got 'share'",
        ),
        (lambda: sn.manyof(1, [1, 2], hints="share"), r"`hints` of manyof must be a dict or None"),
        (lambda: sn.permutate([1, 2], hints=["x"]), r"`hints` of permutate must be a dict"),
        (lambda: sn.floatv(0.1, 1.0, hints=7), r"`hints` of floatv must be a dict or None"),
        (lambda: sn.intv(1, 3, hints="share"), r"`hints` of intv must be a dict or None"),
        (lambda: sn.subset([1, 2], hints="share"), r"`hints` of subset must be a dict or None"),
    ],
)
def test_bad_arguments_name_the_rule_and_the_value(make, pattern):
    with pytest.raises((ValueError, TypeError), match=pattern):
        make()


def test_non_distinct_manyof_may_ask_for_more_picks_than_candidates():
    assert sn.manyof(3, [1, 2], distinct=False).num_choices == 3


def test_subset_materializes_chosen_candidates_in_order():
    codec = sn.encode({"inputs": sn.subset(["a", "b", "c"], anchor=3)})
    assert [d.kind for d in codec.decisions] == ["subset"] * 3
    assert [d.source for d in codec.decisions] == ["a", "b", "c"]
    assert {d.anchor for d in codec.decisions} == {3}
    assert codec.materialize([1, 0, 1]) == {"inputs": ["a", "c"]}
    assert codec.materialize([0, 0, 0]) == {"inputs": []}
    assert codec.space_size == 8
