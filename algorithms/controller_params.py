"""Hyperparameter checks and preset resolution shared by the controller algorithms.

Errors read "`name` must be <rule>, but got <value!r>".
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["check_bool", "check_int", "check_number", "resolve_hyperparameters"]


def resolve_hyperparameters(
    preset: str | None,
    presets: dict[str, dict[str, Any]],
    defaults: dict[str, Any],
    given: dict[str, Any],
) -> dict[str, Any]:
    """Defaults, overridden by the preset's values, overridden by the given ones."""
    if preset is not None and preset not in presets:
        raise ValueError(f"`preset` must be None or one of {sorted(presets)}, but got {preset!r}")
    values = dict(defaults)
    if preset is not None:
        values.update(presets[preset])
    values.update({k: v for k, v in given.items() if v is not None})
    return values


def check_int(name: str, value: Any, low: int) -> None:
    """Raises ValueError unless ``value`` is an int (not a bool) ``>= low``.

    Example:
        >>> check_int("epochs", 0, 1)
        Traceback (most recent call last):
        ValueError: `epochs` must be an int >= 1, but got 0
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"`{name}` must be an int >= {low}, but got {value!r}")


def check_bool(name: str, value: Any) -> None:
    """Raises ValueError unless ``value`` is a bool."""
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be a bool, but got {value!r}")


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raises ValueError unless ``value`` is a finite number within the given bounds.

    Example:
        >>> check_number("clip", 0.0, low=0, low_open=True)
        Traceback (most recent call last):
        ValueError: `clip` must be a number > 0, but got 0.0
    """
    ok = (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and math.isfinite(value)
        and (low is None or (value > low if low_open else value >= low))
        and (high is None or (value < high if high_open else value <= high))
    )
    if not ok:
        left = "" if low is None else f"{'>' if low_open else '>='} {low}"
        right = "" if high is None else f"{'<' if high_open else '<='} {high}"
        rule = " and ".join(p for p in (left, right) if p)
        raise ValueError(f"`{name}` must be a number {rule}, but got {value!r}")
