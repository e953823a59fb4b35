"""The neighbours of an architecture: every way to change one active decision.

A search that walks the graph of architectures (local search, random walks, the
learned search agent) needs the edges of that graph, and over token sequences
they come from the codec alone. A *move* ``(position, token)`` gives the active
decision at ``position`` another token its masks allow there; the rest of the
sequence is re-walked as :func:`~symbolic_nas.algorithms.mutation.mutate` does
it: later decisions that stay active keep their tokens where the masks still
allow them, and decisions the change made active (a new branch of a
conditional space) or whose old token is no longer allowed are drawn uniformly
from ``rng``. In an exact-``k`` anchor group a member's move flips its
membership and the opposite flip goes to a partner drawn from ``rng``, so
exactly ``k`` stay chosen.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from symbolic_nas.space.codec import Codec

__all__ = ["Move", "apply_move", "moves", "neighbours"]

#: A move: ``(position, new token)``; the position indexes the token sequence.
Move = tuple[int, int]


def moves(codec: Codec, tokens: Sequence[int]) -> tuple[list[int], list[Move]]:
    """The decision index of each token and every move of ``tokens``, in position order.

    Example:
        >>> import symbolic_nas as sn
        >>> from symbolic_nas.algorithms.neighbours import moves
        >>> codec = sn.encode({"a": sn.oneof([1, 2, 3]), "b": sn.oneof([4, 5])})
        >>> moves(codec, [0, 1])
        ([0, 1], [(0, 1), (0, 2), (1, 0)])
    """
    decisions = codec.trace(tokens)
    walker = codec.walker()
    result: list[Move] = []
    for position, token in enumerate(tokens):
        dec = codec.decisions[decisions[position]]
        if dec.required is not None:
            if 0 < dec.required < dec.group_size:
                result.append((position, 1 - int(token)))
        else:
            result += [(position, t) for t in walker.valid_tokens() if t != token]
        walker.push(token)
    return decisions, result


def apply_move(
    codec: Codec,
    tokens: Sequence[int],
    move: Move,
    rng: random.Random,
    decisions: Sequence[int] | None = None,
) -> list[int]:
    """The neighbour that ``move`` leads to (see the module docstring).

    Example:
        >>> import random
        >>> import symbolic_nas as sn
        >>> from symbolic_nas.algorithms.neighbours import apply_move
        >>> codec = sn.encode({"a": sn.oneof([1, 2, 3]), "b": sn.oneof([4, 5])})
        >>> apply_move(codec, [0, 1], (0, 2), random.Random(0))
        [2, 1]
    """
    if decisions is None:
        decisions = codec.trace(tokens)
    position, new = move
    new_tokens = [int(t) for t in tokens]
    dec = codec.decisions[decisions[position]]
    if dec.required is not None:
        partners = [
            i
            for i, d in enumerate(decisions)
            if i != position and codec.decisions[d].group == dec.group and tokens[i] == new
        ]
        new_tokens[partners[rng.randrange(len(partners))]] = int(tokens[position])
    new_tokens[position] = int(new)
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


def neighbours(
    codec: Codec, tokens: Sequence[int], rng: random.Random
) -> list[tuple[Move, list[int]]]:
    """Every move of ``tokens`` with the neighbour it leads to, in position order.

    Args:
        codec: The space's codec.
        tokens: A valid token sequence of ``codec``.
        rng: Draws the tokens of decisions a move makes active (and anchor partners).

    Raises:
        ValueError: ``tokens`` is not a valid sequence of ``codec``.

    Example:
        >>> import random
        >>> import symbolic_nas as sn
        >>> from symbolic_nas.algorithms.neighbours import neighbours
        >>> codec = sn.encode({"a": sn.oneof([1, 2, 3]), "b": sn.oneof([4, 5])})
        >>> [n for _, n in neighbours(codec, [0, 1], random.Random(0))]
        [[1, 1], [2, 1], [0, 0]]
    """
    decisions, found = moves(codec, tokens)
    return [(m, apply_move(codec, tokens, m, rng, decisions)) for m in found]
