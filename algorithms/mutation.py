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
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from symbolic_nas.space.codec import Codec

__all__ = ["mutate"]


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
    decisions = codec.trace(tokens)
    walker = codec.walker()
    valid_at: list[list[int]] = []
    for token in tokens:
        valid_at.append(walker.valid_tokens())
        walker.push(token)
    exact = [_exact_group(codec, d) for d in decisions]
    mutable = [i for i, valid in enumerate(valid_at) if len(valid) > 1 or exact[i]]
    if not mutable:
        return list(tokens)
    position = mutable[rng.randrange(len(mutable))]
    new_tokens = list(tokens)
    if exact[position]:
        # Exactly k members: move one membership to a uniformly random other member.
        group = codec.decisions[decisions[position]].group
        new = 1 - tokens[position]
        partners = [
            i
            for i, d in enumerate(decisions)
            if i != position and codec.decisions[d].group == group and tokens[i] == new
        ]
        new_tokens[partners[rng.randrange(len(partners))]] = tokens[position]
    else:
        others = [t for t in valid_at[position] if t != tokens[position]]
        new = others[rng.randrange(len(others))]
    new_tokens[position] = new
    old = dict(zip(decisions, new_tokens))
    walker = codec.walker()
    for token in new_tokens[: position + 1]:
        walker.push(token)
    while not walker.done:
        valid = walker.valid_tokens()
        kept = old.get(walker.decision)
        if kept is None or kept not in valid:
            kept = valid[rng.randrange(len(valid))]
        walker.push(kept)
    return walker.tokens


def _exact_group(codec: Codec, d: int) -> bool:
    """Whether decision ``d`` is a member of an exact-k group with room to move."""
    dec = codec.decisions[d]
    return dec.required is not None and 0 < dec.required < dec.group_size
