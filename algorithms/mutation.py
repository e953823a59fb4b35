"""Token-level mutation: change one decision, re-sample what that change makes active.

Evolutionary algorithms mutate an architecture by changing one of its choices
(Real et al. 2019's op and hidden-state mutations; the one-edge mutation of the
NAS-Bench-201 baselines). Over token sequences that generalises to: pick one
active decision that has another valid token, give it a *different* valid
token, then walk the codec on from there. Every later decision that is still
active keeps its old token when the masks still allow it; decisions the change
made active (a new branch of a conditional space) are sampled uniformly among
their valid tokens, and so are decisions whose old token the masks no longer
allow (e.g. a sorted ``manyof`` pick after an earlier pick moved past it). In
an exact-``k`` anchor group one membership moves: a chosen member is dropped
and a uniformly random unchosen one is added, or the other way round.

The neighbourhood is listed in terms of *moves* ``(position, token)``
(:func:`moves`): each other valid token of each active decision, and for a member
of an exact-``k`` group the flip of its membership, whose opposite flip goes to a
partner drawn from ``rng`` (:func:`apply_move`). :func:`labelled_neighbours` pairs
every move with the neighbour it leads to (random walk's and the learned search
agent's neighbourhood, Cassimon, Mercelis & Mets 2024: the agent scores moves by
these labels, in this order); :func:`neighbours` lists the distinct neighbours
with every membership swap of an exact-``k`` group spelled out (local search's
neighbourhood, White, Nolen and Savani, UAI 2021). All of them, and
:func:`mutate`, change one decision and re-walk the rest with the same code.

With exact float values (:func:`mutate_with_floats`, what ``evolution`` uses by
default), a float decision is a position like any other, but it moves by a
Gaussian step on its scale (:func:`~symbolic_nas.space.floats.perturb_float`:
a tenth of the range, multiplicative for ``scale="log"``, reflected at the ends)
rather than to another bin, so children explore near their parent's value; other
decisions' floats are kept, and floats a change makes active are drawn uniformly
on their scale.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from symbolic_nas.space.codec import FLOAT, Codec
from symbolic_nas.space.floats import perturb_float, random_float, snap_floats

__all__ = [
    "Move",
    "apply_move",
    "labelled_neighbours",
    "moves",
    "mutate",
    "mutate_with_floats",
    "neighbours",
]

#: A move: ``(position, new token)``; the position indexes the token sequence.
Move = tuple[int, int]


def mutate(codec: Codec, tokens: Sequence[int], rng: random.Random) -> list[int]:
    """A copy of ``tokens`` with one decision changed to another valid token.

    The position is drawn uniformly among the active decisions that have more
    than one valid token (given the tokens before them), and the new token
    uniformly among the other valid tokens there. A member of an exact-``k``
    anchor group is a position too: its membership moves to a uniformly random
    member of the other state, so exactly ``k`` stay chosen (PyGlove's mutator
    likewise replaces one pick of a ``manyof`` by a candidate not picked). The
    rest of the sequence is re-walked as described in the module docstring, so
    the result is always a valid sequence of ``codec``. A space with a single
    point has nothing to change: the tokens come back unchanged.

    Args:
        codec: The space's codec.
        tokens: A valid token sequence of ``codec``.
        rng: The random generator to draw from.

    Returns:
        The mutated token sequence (a new list).

    Raises:
        ValueError: ``tokens`` is not a valid sequence of ``codec``.

    Example:
        >>> import random
        >>> import symbolic_nas as sn
        >>> from symbolic_nas.algorithms.mutation import mutate
        >>> codec = sn.encode({"a": sn.oneof([1, 2, 3]), "b": sn.oneof([4, 5])})
        >>> child = mutate(codec, [0, 0], random.Random(0))
        >>> sum(x != y for x, y in zip(child, [0, 0]))
        1
    """
    return _mutate(codec, tokens, rng, None)


def mutate_with_floats(
    codec: Codec, tokens: Sequence[int], floats: dict[int, float], rng: random.Random
) -> tuple[list[int], dict[int, float]]:
    """:func:`mutate` for a parent with exact float values (by decision index).

    The position is drawn as :func:`mutate` draws it; a float decision there moves
    by :func:`~symbolic_nas.space.floats.perturb_float` (its token follows its
    nearest bin). Every other float keeps its value while it stays active, and a
    float decision the change makes active gets a value drawn uniformly on its
    scale. A float of the parent without an exact value (a bin) is perturbed from
    its bin's value. Without float decisions the draws are :func:`mutate`'s.

    Args:
        codec: The space's codec.
        tokens: A valid token sequence of ``codec``.
        floats: The parent's exact float values (may be empty).
        rng: The random generator to draw from.

    Returns:
        The child's tokens and exact float values.

    Example:
        >>> import random
        >>> import symbolic_nas as sn
        >>> codec = sn.encode({"lr": sn.floatv(1e-4, 1e-1, scale="log")})
        >>> tokens, floats = mutate_with_floats(codec, [4], {0: 1e-3}, random.Random(0))
        >>> floats[0] != 1e-3 and 1e-4 <= floats[0] <= 1e-1
        True
    """
    exact = dict(floats)
    return snap_floats(codec, _mutate(codec, tokens, rng, exact), exact)


def _mutate(
    codec: Codec, tokens: Sequence[int], rng: random.Random, floats: dict[int, float] | None
) -> list[int]:
    """The mutation; ``floats`` None: tokens only, else exact values, updated in place."""
    decisions, valid_at, exact = _positions(codec, tokens)
    mutable = [i for i, valid in enumerate(valid_at) if len(valid) > 1 or exact[i]]
    if not mutable:
        return list(tokens)
    position = mutable[rng.randrange(len(mutable))]
    dec = codec.decisions[decisions[position]]
    if floats is not None and dec.kind == FLOAT:
        value = floats.get(dec.index, float(dec.values[tokens[position]]))
        floats[dec.index] = perturb_float(dec, value, rng)
        return list(tokens)  # no subtree: the rest stays (the caller snaps the token)
    if exact[position]:
        # Exactly k members: move one membership to a uniformly random other member.
        new = 1 - int(tokens[position])
    else:
        others = [t for t in valid_at[position] if t != tokens[position]]
        new = others[rng.randrange(len(others))]
    return _change(codec, decisions, tokens, position, new, rng, floats=floats)


def neighbours(codec: Codec, tokens: Sequence[int], rng: random.Random) -> list[list[int]]:
    """Every sequence one decision away from ``tokens`` (local search's neighbourhood).

    One neighbour per other valid token of each active decision (in sequence
    order, then token order), and for a member of an exact-``k`` anchor group one
    per member of the other state that it can swap with (listed at the earlier
    member of each pair, once). The rest of each sequence is re-walked as in
    :func:`mutate`: later decisions keep their tokens where the masks allow, and
    the decisions a change makes active are drawn from ``rng``, so a neighbour
    that opens a new branch is one random representative of it. Duplicates are
    dropped (first kept); ``tokens`` itself is never listed.

    Args:
        codec: The space's codec.
        tokens: A valid token sequence of ``codec``.
        rng: The random generator for newly active decisions.

    Returns:
        The neighbours, each a valid token sequence of ``codec``.

    Raises:
        ValueError: ``tokens`` is not a valid sequence of ``codec``.

    Example:
        >>> import random
        >>> import symbolic_nas as sn
        >>> from symbolic_nas.algorithms.mutation import neighbours
        >>> codec = sn.encode({"a": sn.oneof([1, 2, 3]), "b": sn.oneof([4, 5])})
        >>> neighbours(codec, [0, 0], random.Random(0))
        [[1, 0], [2, 0], [0, 1]]
    """
    decisions, found = moves(codec, tokens)
    out: list[list[int]] = []
    seen = {tuple(tokens)}
    for position, new in found:
        partners: list[int | None] = [None]
        if codec.decisions[decisions[position]].required is not None:
            # Every swap with a member of the other state, at the earlier member of the pair.
            partners = [p for p in _partners(codec, decisions, tokens, position) if p > position]
        for partner in partners:
            neighbour = _change(codec, decisions, tokens, position, new, rng, partner)
            key = tuple(neighbour)
            if key not in seen:
                seen.add(key)
                out.append(neighbour)
    return out


def moves(codec: Codec, tokens: Sequence[int]) -> tuple[list[int], list[Move]]:
    """The decision index of each token and every move of ``tokens``, in position order.

    A move gives an active decision another token its masks allow there (in token
    order), or flips the membership of a member of an exact-``k`` group (its
    partner is drawn when the move is applied, :func:`apply_move`).

    Raises:
        ValueError: ``tokens`` is not a valid sequence of ``codec``.

    Example:
        >>> import symbolic_nas as sn
        >>> from symbolic_nas.algorithms.mutation import moves
        >>> codec = sn.encode({"a": sn.oneof([1, 2, 3]), "b": sn.oneof([4, 5])})
        >>> moves(codec, [0, 1])
        ([0, 1], [(0, 1), (0, 2), (1, 0)])
    """
    decisions, valid_at, exact = _positions(codec, tokens)
    found: list[Move] = []
    for position, valid in enumerate(valid_at):
        token = int(tokens[position])
        if exact[position]:
            found.append((position, 1 - token))
        elif codec.decisions[decisions[position]].required is None:
            found += [(position, t) for t in valid if t != token]
    return decisions, found


def apply_move(
    codec: Codec,
    tokens: Sequence[int],
    move: Move,
    rng: random.Random,
    decisions: Sequence[int] | None = None,
) -> list[int]:
    """The neighbour that ``move`` leads to.

    The rest of the sequence is re-walked as in :func:`mutate`; in an exact-``k``
    group the opposite flip goes to a partner drawn uniformly from ``rng``, so
    exactly ``k`` stay chosen.

    Args:
        codec: The space's codec.
        tokens: A valid token sequence of ``codec``.
        move: One of :func:`moves`' moves of ``tokens``.
        rng: Draws the tokens of decisions the move makes active (and the partner).
        decisions: ``codec.trace(tokens)`` when the caller has it.

    Example:
        >>> import random
        >>> import symbolic_nas as sn
        >>> from symbolic_nas.algorithms.mutation import apply_move
        >>> codec = sn.encode({"a": sn.oneof([1, 2, 3]), "b": sn.oneof([4, 5])})
        >>> apply_move(codec, [0, 1], (0, 2), random.Random(0))
        [2, 1]
    """
    if decisions is None:
        decisions = codec.trace(tokens)
    position, new = move
    return _change(codec, decisions, tokens, position, new, rng)


def labelled_neighbours(
    codec: Codec, tokens: Sequence[int], rng: random.Random
) -> list[tuple[Move, list[int]]]:
    """Every move of ``tokens`` (:func:`moves`) with the neighbour it leads to, in order.

    Args:
        codec: The space's codec.
        tokens: A valid token sequence of ``codec``.
        rng: Draws the tokens of decisions a move makes active (and anchor partners).

    Raises:
        ValueError: ``tokens`` is not a valid sequence of ``codec``.

    Example:
        >>> import random
        >>> import symbolic_nas as sn
        >>> from symbolic_nas.algorithms.mutation import labelled_neighbours
        >>> codec = sn.encode({"a": sn.oneof([1, 2, 3]), "b": sn.oneof([4, 5])})
        >>> labelled_neighbours(codec, [0, 1], random.Random(0))
        [((0, 1), [1, 1]), ((0, 2), [2, 1]), ((1, 0), [0, 0])]
    """
    decisions, found = moves(codec, tokens)
    return [(m, apply_move(codec, tokens, m, rng, decisions)) for m in found]


def _positions(
    codec: Codec, tokens: Sequence[int]
) -> tuple[list[int], list[list[int]], list[bool]]:
    """Each position's decision, its valid tokens, and whether it is an exact-k member."""
    decisions = codec.trace(tokens)
    walker = codec.walker()
    valid_at: list[list[int]] = []
    for token in tokens:
        valid_at.append(walker.valid_tokens())
        walker.push(token)
    return decisions, valid_at, [_exact_group(codec, d) for d in decisions]


def _partners(
    codec: Codec, decisions: Sequence[int], tokens: Sequence[int], position: int
) -> list[int]:
    """Positions of the same exact-k group in the other state than ``position``'s."""
    group = codec.decisions[decisions[position]].group
    other = 1 - tokens[position]
    return [
        i
        for i, d in enumerate(decisions)
        if i != position and codec.decisions[d].group == group and tokens[i] == other
    ]


def _change(
    codec: Codec,
    decisions: Sequence[int],
    tokens: Sequence[int],
    position: int,
    new: int,
    rng: random.Random,
    partner: int | None = None,
    floats: dict[int, float] | None = None,
) -> list[int]:
    """``tokens`` with ``new`` at ``position``, the rest re-walked (:func:`_rewalk`). For
    an exact-k member, ``partner`` (drawn from ``rng`` when None) takes the old token."""
    changed = [int(t) for t in tokens]
    if codec.decisions[decisions[position]].required is not None:
        if partner is None:
            partners = _partners(codec, decisions, tokens, position)
            partner = partners[rng.randrange(len(partners))]
        changed[partner] = int(tokens[position])
    changed[position] = int(new)
    return _rewalk(codec, decisions, changed, position, rng, floats)


def _rewalk(
    codec: Codec,
    decisions: Sequence[int],
    new_tokens: list[int],
    position: int,
    rng: random.Random,
    floats: dict[int, float] | None = None,
) -> list[int]:
    """``new_tokens`` up to ``position``, then the old token of each later decision
    where still valid, else a uniformly random valid one. With ``floats`` (updated in
    place), a float decision made active gets a value drawn uniformly on its scale
    (its token is snapped to the nearest bin by the caller), and the values of
    decisions no longer active are dropped."""
    old = dict(zip(decisions, new_tokens))
    walker = codec.walker()
    for token in new_tokens[: position + 1]:
        walker.push(token)
    active = set(decisions[: position + 1])
    while not walker.done:
        valid = walker.valid_tokens()
        d = walker.decision
        active.add(d)
        kept = old.get(d)
        if floats is not None and kept is None and codec.decisions[d].kind == FLOAT:
            floats[d] = random_float(codec.decisions[d], rng)
            kept = valid[0]
        elif kept is None or kept not in valid:
            kept = valid[rng.randrange(len(valid))]
        walker.push(kept)
    if floats is not None:
        for d in [d for d in floats if d not in active]:
            del floats[d]
    return walker.tokens


def _exact_group(codec: Codec, d: int) -> bool:
    """Whether decision ``d`` is a member of an exact-k group with room to move."""
    dec = codec.decisions[d]
    return dec.required is not None and 0 < dec.required < dec.group_size
