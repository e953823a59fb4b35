"""How an evaluator says what it wants: a built model (default), the tokens, or the DNA.

A tabular benchmark scores an architecture from its tokens alone; declaring
``input="tokens"`` lets a search skip building networks and ``pg.DNA`` objects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["INPUTS", "evaluator", "input_of"]

INPUTS = ("model", "tokens", "dna")
_ATTRIBUTE = "sn_input"

F = TypeVar("F", bound=Callable[..., Any])


def evaluator(input: str = "model") -> Callable[[F], F]:
    """Decorator declaring what an evaluator function (or method) receives.

    Args:
        input: ``"model"`` (a freshly materialised object), ``"tokens"`` (a list of
            ints) or ``"dna"`` (a ``pg.DNA``).

    Example:
        >>> import symbolic_nas as sn
        >>> @sn.evaluator(input="tokens")
        ... def score(tokens):
        ...     return float(sum(tokens))
        >>> sn.tuner.evaluators.input_of(score)
        'tokens'
    """
    if input not in INPUTS:
        raise ValueError(f"`input` must be one of {INPUTS}, but got {input!r}")

    def decorate(fn: F) -> F:
        setattr(fn, _ATTRIBUTE, input)
        return fn

    return decorate


def input_of(fn: Any) -> str:
    """What ``fn`` wants: its declared input, else ``"model"`` (bound methods included)."""
    value = getattr(fn, _ATTRIBUTE, "model")
    if value not in INPUTS:
        raise ValueError(
            f"`{_ATTRIBUTE}` of an evaluator must be one of {INPUTS}, but got {value!r}"
        )
    return value
