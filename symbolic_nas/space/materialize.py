"""``materialize``: the concrete object of a space for a DNA or a token sequence."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar, overload

import numpy as np
import pyglove as pg
from torch import nn

from symbolic_nas.space.annotate import Annotated
from symbolic_nas.space.codec import Codec, encode

__all__ = ["as_tokens", "materialize"]


def as_tokens(codec: Codec, dna_or_tokens: Any) -> list[int]:
    """Token list of a ``pg.DNA``, a sequence of ints or a 1-D integer numpy array."""
    if isinstance(dna_or_tokens, pg.DNA):
        return codec.to_tokens(dna_or_tokens)
    if isinstance(dna_or_tokens, np.ndarray):
        if dna_or_tokens.ndim != 1 or not np.issubdtype(dna_or_tokens.dtype, np.integer):
            raise TypeError(
                "`dna` must be a pg.DNA or a 1-D integer sequence of tokens, but got an array "
                f"of shape {dna_or_tokens.shape} and dtype {dna_or_tokens.dtype}"
            )
        return [int(t) for t in dna_or_tokens]
    if isinstance(dna_or_tokens, Sequence) and not isinstance(dna_or_tokens, (str, bytes)):
        return list(dna_or_tokens)
    raise TypeError(
        f"`dna` must be a pg.DNA or a sequence of int tokens, but got {dna_or_tokens!r}"
    )


_T = TypeVar("_T")


# Annotated first: its base class comes from untyped PyGlove, so mypy would let it
# match any earlier parameter type.
@overload
def materialize(
    space: Annotated, dna: Any, floats: dict[int, float] | None = None
) -> nn.Module: ...
@overload
def materialize(space: Codec, dna: Any, floats: dict[int, float] | None = None) -> Any: ...
@overload
def materialize(space: _T, dna: Any, floats: dict[int, float] | None = None) -> _T: ...
def materialize(space: Any, dna: Any, floats: dict[int, float] | None = None) -> Any:
    """The concrete object (a fresh module, for module spaces) chosen by ``dna``.

    Args:
        space: A search space, or its :class:`~symbolic_nas.space.codec.Codec` (faster:
            the space is compiled once).
        dna: A ``pg.DNA`` of the space, or its tokens (list, tuple or numpy array).
        floats: With tokens, the exact values of float decisions by decision index
            (a trial's ``floats``; a DNA holds its own): ``sn.materialize(space,
            trial.tokens, trial.floats)`` rebuilds what the trial evaluated.

    Returns:
        A new object at every call: modules get fresh parameters and share no
        tensor with other materialisations. Type checkers see the type the space
        stands for (see :mod:`symbolic_nas.space.placeholders`): ``Net(...)`` with
        placeholders materialises a ``Net``, an annotated model an ``nn.Module``.

    Example:
        >>> import symbolic_nas as sn, torch.nn as nn
        >>> Linear = sn.symbolize(nn.Linear)
        >>> space = Linear(4, sn.oneof([2, 3]))
        >>> sn.materialize(space, [1]).out_features
        3
    """
    codec = space if isinstance(space, Codec) else encode(space)
    if isinstance(dna, pg.DNA):  # a DNA may hold exact (unbinned) float values
        return codec.materialize(*codec.to_tokens_and_floats(dna))
    return codec.materialize(as_tokens(codec, dna), floats)
