"""Property tests over randomly generated nested and conditional spaces.

For every DNA that PyGlove enumerates: ``from_tokens(to_tokens(dna)) == dna``;
the token sequences found by walking the encoder's masks are exactly the
sequences of those DNA (so masks never allow an invalid token nor forbid a
valid one); and the compiled builder materialises what ``pg.materialize`` does.
"""

from __future__ import annotations

import pyglove as pg
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

import symbolic_nas as sn
from symbolic_nas.space.placeholders import Subset
from tests.helpers.codec import all_sequences

MAX_SIZE = 48

leaves = st.one_of(st.integers(0, 9), st.sampled_from(["a", "b", "c"]))


def _extend(children):
    small_lists = st.lists(children, min_size=1, max_size=3)
    constants = st.lists(leaves, min_size=2, max_size=4, unique=True)
    return st.one_of(
        small_lists.map(sn.oneof),
        st.tuples(
            st.integers(1, 2),
            st.lists(children, min_size=2, max_size=3),
            st.booleans(),
            st.booleans(),
        ).map(lambda a: sn.manyof(a[0], a[1], a[2], a[3])),
        st.lists(children, min_size=1, max_size=3).map(
            lambda xs: pg.Dict({f"k{i}": x for i, x in enumerate(xs)})
        ),
        small_lists.map(pg.List),
        st.tuples(st.integers(0, 3), st.integers(0, 2)).map(lambda a: sn.intv(a[0], a[0] + a[1])),
        constants.map(lambda xs: sn.subset(xs, anchor="s")),
        constants.map(lambda xs: sn.manyof(1, xs, sorted=True, hints={"anchor": "m"})),
    )


spaces = st.recursive(leaves, _extend, max_leaves=12).map(
    lambda body: pg.Dict(body=body, top=sn.oneof(["x", "y"]))
)


def _plain(value):
    """pg.materialize's result as plain containers, subsets resolved to chosen lists."""
    if isinstance(value, Subset):
        return [_plain(c) for c, m in zip(value.candidates, value.mask) if m]
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(spaces)
def test_round_trip_masks_and_materialize_agree_with_pyglove(space):
    codec = sn.encode(space)
    assume(codec.space_size <= MAX_SIZE)
    event(f"decisions: {min(codec.num_decisions, 8)}{'+' if codec.num_decisions >= 8 else ''}")
    all_dna = list(codec.spec.iter_dna())
    assert len(all_dna) == codec.space_size
    token_sets = set()
    for dna in all_dna:
        tokens = codec.to_tokens(dna)
        codec.validate(tokens)
        assert codec.from_tokens(tokens) == dna
        token_sets.add(tuple(tokens))
        assert _plain(codec.materialize(tokens)) == _plain(pg.materialize(space, dna))
    assert token_sets == {tuple(s) for s in all_sequences(codec)}
