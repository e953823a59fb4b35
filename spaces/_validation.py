"""Argument checks shared by the space factories ("`name` must be <rule>, but got <value>")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["check_choices", "check_int"]


def check_int(name: str, value: Any, *, low: int = 1) -> int:
    """``value`` as an int ``>= low``; raises ``ValueError`` naming the rule otherwise.

    Example:
        >>> check_int("num_layers", 3)
        3
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"`{name}` must be an int >= {low}, but got {value!r}")
    return value


def check_choices(name: str, values: Any, *, low: int = 1) -> tuple[int, ...]:
    """``values`` as a non-empty tuple of distinct ints ``>= low``.

    Example:
        >>> check_choices("num_filters", [24, 36])
        (24, 36)
    """
    if (
        isinstance(values, (str, bytes))
        or not isinstance(values, Sequence)
        or not values
        or any(isinstance(v, bool) or not isinstance(v, int) or v < low for v in values)
        or len(set(values)) != len(values)
    ):
        raise ValueError(
            f"`{name}` must be a non-empty sequence of distinct ints >= {low}, but got {values!r}"
        )
    return tuple(values)
