"""Walking a :class:`~symbolic_nas.space.codec.Codec`'s decisions: token by token
(:class:`Walker`, what algorithms sample with) and along a ``pg.DNA``'s numbers
(:func:`numbers_to_tokens`, behind :meth:`Codec.to_tokens
<symbolic_nas.space.codec.Codec.to_tokens>`).

Example:
    >>> from symbolic_nas.space import encode, oneof
    >>> walker = encode({"k": oneof([3, 5, 7])}).walker()
    >>> walker.valid_tokens(), walker.push(2), walker.done, walker.tokens
    ([0, 1, 2], None, True, [2])
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from symbolic_nas.space.decisions import FLOAT, Decision, MaskRule

if TYPE_CHECKING:
    from symbolic_nas.space.codec import Codec

__all__ = ["Walker", "nearest_bin", "numbers_to_tokens"]

# Module-level name for the per-token loop (a global lookup, not an enum attribute).
_FREE = MaskRule.FREE


class Walker:
    """Walks a :class:`Codec`'s space token by token; see :meth:`Codec.walker`."""

    __slots__ = ("_codec", "_groups", "decision", "position", "tokens")

    def __init__(self, codec: Codec):
        self._codec = codec
        self._groups: dict[int, list[int]] = {}
        self.decision = codec.start
        self.position = 0
        self.tokens: list[int] = []

    @property
    def done(self) -> bool:
        """Whether the sequence is complete."""
        return self.decision == len(self._codec.decisions)

    @property
    def current(self) -> Decision:
        """The decision to be made next."""
        if self.done:
            raise ValueError("the token sequence is complete: there is no next decision")
        return self._codec.decisions[self.decision]

    def mask(self) -> np.ndarray:
        """Boolean mask of the valid tokens at the current decision."""
        return self._codec._mask(self.current.index, self._groups)

    def valid_tokens(self) -> list[int]:
        """The valid tokens at the current decision."""
        return list(self._codec._valid(self.current.index, self._groups))

    def push(self, token: int) -> None:
        """Takes ``token`` for the current decision and moves to the next one."""
        codec = self._codec
        dec = self.current
        if isinstance(token, bool) or not isinstance(token, (int, np.integer)):
            raise ValueError(f"token at position {self.position} must be an int, but got {token!r}")
        token = int(token)
        valid = codec._valid(dec.index, self._groups)
        if token not in valid:
            raise ValueError(
                f"token at position {self.position} must be one of {list(valid)} for decision "
                f"{dec.name!r}, but got {token}"
            )
        if codec._rule[dec.index] != _FREE:
            self._groups.setdefault(codec._group[dec.index], []).append(token)
        self.tokens.append(token)
        self.position += 1
        self.decision = codec._nxt[dec.index][token]


def numbers_to_tokens(
    codec: Codec, numbers: list[Any], floats: dict[int, float] | None = None
) -> list[int]:
    """The tokens of a ``pg.DNA``'s numbers (``dna.to_numbers()``) in ``codec``'s space;
    floats go to their nearest bin (on the float's scale), and when ``floats`` is
    given, the values that are not their bin's value are put there (by decision
    index).

    Raises:
        ValueError: If the numbers do not fit the space (as may ``IndexError`` or
            ``TypeError``); :meth:`Codec.to_tokens
            <symbolic_nas.space.codec.Codec.to_tokens>` says which DNA.
    """
    tokens: list[int] = []
    end = len(codec._vocab)
    d, i = codec.start, 0
    while d != end:
        dec = codec.decisions[d]
        if dec.kind == FLOAT:
            value = float(numbers[i])
            token = nearest_bin(dec, value)
            if floats is not None and value != dec.values[token]:
                floats[d] = value
            i += 1
        elif dec.required is not None:
            if dec.group_index == 0:
                chosen = set(numbers[i : i + dec.required])
                i += dec.required
                pending = [int(j in chosen) for j in range(dec.group_size)]
            token = pending[dec.group_index]
        else:
            token = numbers[i]
            i += 1
            if isinstance(token, float) or not 0 <= token < dec.vocab_size:
                raise ValueError(f"value {token!r} at decision {dec.name!r}")
        tokens.append(int(token))
        d = codec._nxt[d][token]
    if i != len(numbers):
        raise ValueError(f"{len(numbers) - i} values left over")
    return tokens


def nearest_bin(dec: Decision, value: float) -> int:
    """The token of a float decision's bin nearest ``value``, on the float's scale.

    Example:
        >>> from symbolic_nas.space import encode, floatv
        >>> dec = encode({"lr": floatv(1e-3, 1e-1, scale="log", hints={"bins": 3})}).decisions[0]
        >>> [nearest_bin(dec, v) for v in (1e-4, 0.02, 0.05)]
        [0, 1, 2]
    """
    values = dec.values  # a few bins: plain Python beats numpy's per-call overhead
    if dec.scale == "log":
        target = math.log(max(value, 1e-300))
        distances = [abs(math.log(v) - target) for v in values]
    elif dec.scale == "rlog":  # log-spaced from the top: distances of (low + high - x)
        mirror = values[0] + values[-1]
        target = math.log(max(mirror - value, 1e-300))
        distances = [abs(math.log(max(mirror - v, 1e-300)) - target) for v in values]
    else:
        distances = [abs(v - value) for v in values]
    return distances.index(min(distances))
