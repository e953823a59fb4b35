"""Declarative parameter validation with one message template (scikit-learn's style).

A public constructor declares each parameter's constraints once, as a list of
which any one must hold, and checks its arguments with :func:`validate_params`.
Every violation raises :class:`InvalidParameterError` (a ``ValueError`` and a
``TypeError``) with one message template::

    `name` must be <what the constraints allow>, but got <value>

The declarations also generate invalid values (:func:`invalid_values`), so one
test checks every public constructor against its own declaration.

Example:
    >>> from symbolic_nas.validation import Interval, validate_params
    >>> CONSTRAINTS = {"epochs": [Interval(int, 1, None)], "lr": [Interval(float, 0, None,
    ...     closed="neither")]}
    >>> validate_params(CONSTRAINTS, {"epochs": 3, "lr": 0.1})
    >>> validate_params(CONSTRAINTS, {"epochs": 0, "lr": 0.1})
    Traceback (most recent call last):
    ...
    symbolic_nas.validation.InvalidParameterError: `epochs` must be an int >= 1, but got 0
"""

from __future__ import annotations

import abc
import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

__all__ = [
    "Constraint",
    "InstanceOf",
    "Interval",
    "InvalidParameterError",
    "Options",
    "Satisfies",
    "SequenceOf",
    "check",
    "describe",
    "invalid_values",
    "make_constraint",
    "validate_params",
]


class InvalidParameterError(ValueError, TypeError):
    """An argument breaks its declared constraints (both a ``ValueError`` and a ``TypeError``).

    Example:
        >>> issubclass(InvalidParameterError, ValueError)
        True
        >>> issubclass(InvalidParameterError, TypeError)
        True
    """


class Constraint(abc.ABC):
    """One rule a value may satisfy; a parameter is valid when any of its rules holds."""

    @abc.abstractmethod
    def is_satisfied_by(self, value: Any) -> bool:
        """Whether ``value`` satisfies this rule."""

    @abc.abstractmethod
    def __str__(self) -> str:
        """The rule in words, to follow "must be" ("an int >= 1")."""

    def invalid_examples(self) -> list[Any]:
        """Values near this rule that break it (for generated tests)."""
        return [object()]


class _NoneConstraint(Constraint):
    def is_satisfied_by(self, value: Any) -> bool:
        return value is None

    def __str__(self) -> str:
        return "None"

    def invalid_examples(self) -> list[Any]:
        return []


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class Interval(Constraint):
    """A number of a kind (``int`` or ``float``; a float accepts ints too) in a range.

    Args:
        kind: ``int`` or ``float``.
        low: The lower end, or None for none.
        high: The upper end, or None for none.
        closed: Which ends belong to the range: ``"both"``, ``"left"``, ``"right"``
            or ``"neither"``. ``float`` intervals never admit NaN.

    Example:
        >>> str(Interval(float, 0, 1, closed="right"))
        'a float in (0, 1]'
        >>> Interval(int, 1, None).is_satisfied_by(True)
        False
    """

    def __init__(
        self,
        kind: type,
        low: float | None,
        high: float | None,
        *,
        closed: Literal["both", "left", "right", "neither"] = "both",
    ) -> None:
        if kind not in (int, float):
            raise ValueError(f"`kind` must be int or float, but got {kind!r}")
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def is_satisfied_by(self, value: Any) -> bool:
        if not (_is_int(value) if self.kind is int else _is_real(value)):
            return False
        if math.isnan(value):
            return False
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        if self.low is not None and (value < self.low if left else value <= self.low):
            return False
        return not (self.high is not None and (value > self.high if right else value >= self.high))

    def __str__(self) -> str:
        what = "an int" if self.kind is int else "a float"
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        if self.low is not None and self.high is None:
            return f"{what} {'>=' if left else '>'} {self.low}"
        if self.high is not None and self.low is None:
            return f"{what} {'<=' if right else '<'} {self.high}"
        if self.low is None and self.high is None:
            return what if self.kind is int else "a finite or infinite float, not NaN"
        return f"{what} in {'[' if left else '('}{self.low}, {self.high}{']' if right else ')'}"

    def invalid_examples(self) -> list[Any]:
        out: list[Any] = ["1", True, float("nan")]
        if self.kind is int:
            out.append(1.5)
        if self.low is not None:
            out.append(self.low - 1 if self.closed in ("both", "left") else self.low)
        if self.high is not None:
            out.append(self.high + 1 if self.closed in ("both", "right") else self.high)
        return out


class Options(Constraint):
    """One of a fixed set of values (strings, usually).

    Example:
        >>> str(Options(["adam", "sgd"]))
        "one of ['adam', 'sgd']"
    """

    def __init__(self, options: Iterable[Any]) -> None:
        self.options = list(options)

    def is_satisfied_by(self, value: Any) -> bool:
        try:
            return any(value == o and type(value) is type(o) for o in self.options)
        except Exception:
            return False

    def __str__(self) -> str:
        return f"one of {self.options}"

    def invalid_examples(self) -> list[Any]:
        return ["<not an option>", 12345]


class InstanceOf(Constraint):
    """An instance of one of ``types``.

    Example:
        >>> str(InstanceOf(bool))
        'a bool'
    """

    def __init__(self, types: type | tuple[type, ...], description: str | None = None) -> None:
        self.types = types if isinstance(types, tuple) else (types,)
        names = " or ".join(t.__name__ for t in self.types)
        self.description = description or f"a {names}"

    def is_satisfied_by(self, value: Any) -> bool:
        if bool not in self.types and int in self.types and isinstance(value, bool):
            return False
        return isinstance(value, self.types)

    def __str__(self) -> str:
        return self.description

    def invalid_examples(self) -> list[Any]:
        return [object(), "x" if str not in self.types else 3]


class Satisfies(Constraint):
    """Any rule given as a predicate and its description.

    Example:
        >>> str(Satisfies(callable, "a callable"))
        'a callable'
    """

    def __init__(
        self,
        predicate: Callable[[Any], bool],
        description: str,
        invalid: Sequence[Any] = (),
    ) -> None:
        self.predicate, self.description, self.invalid = predicate, description, list(invalid)

    def is_satisfied_by(self, value: Any) -> bool:
        try:
            return bool(self.predicate(value))
        except Exception:
            return False

    def __str__(self) -> str:
        return self.description

    def invalid_examples(self) -> list[Any]:
        return [*self.invalid, object()]


class SequenceOf(Constraint):
    """A list or tuple (not a string) whose items all satisfy ``item``.

    Example:
        >>> str(SequenceOf(Interval(int, 1, None), min_len=1))
        'a non-empty sequence of (an int >= 1)'
    """

    def __init__(self, item: Constraint, *, min_len: int = 0, distinct: bool = False) -> None:
        self.item, self.min_len, self.distinct = item, min_len, distinct

    def is_satisfied_by(self, value: Any) -> bool:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            return False
        if len(value) < self.min_len or not all(self.item.is_satisfied_by(v) for v in value):
            return False
        return not (self.distinct and len(set(value)) != len(value))

    def __str__(self) -> str:
        size = "a non-empty sequence" if self.min_len == 1 else "a sequence"
        if self.min_len > 1:
            size = f"a sequence of at least {self.min_len} items"
        distinct = " distinct" if self.distinct else ""
        return f"{size} of{distinct} ({self.item})"

    def invalid_examples(self) -> list[Any]:
        bad = [v for v in self.item.invalid_examples() if not self.item.is_satisfied_by(v)]
        return ["abc", 7, *([[bad[0]]] if bad else []), *([[]] if self.min_len else [])]


def make_constraint(spec: Any) -> Constraint:
    """A :class:`Constraint` from a declaration item: a Constraint, ``None``, a type,
    ``"callable"`` or ``"boolean"``.

    Example:
        >>> str(make_constraint(None)), str(make_constraint("boolean"))
        ('None', 'a bool')
    """
    if isinstance(spec, Constraint):
        return spec
    if spec is None:
        return _NoneConstraint()
    if spec == "boolean":
        return InstanceOf(bool)
    if spec == "callable":
        return Satisfies(callable, "a callable", invalid=[3])
    if isinstance(spec, type):
        return InstanceOf(spec)
    raise ValueError(
        f"`spec` must be a Constraint, None, a type, 'callable' or 'boolean', but got {spec!r}"
    )


def describe(constraints: Sequence[Any]) -> str:
    """The constraints in words, joined with "or" (None last).

    Example:
        >>> describe([Interval(int, 1, None), None])
        'an int >= 1 or None'
    """
    made = [make_constraint(c) for c in constraints]
    words = [str(c) for c in made if not isinstance(c, _NoneConstraint)]
    if any(isinstance(c, _NoneConstraint) for c in made):
        words.append("None")
    return " or ".join(words)


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def check(name: str, value: Any, constraints: Sequence[Any]) -> Any:
    """Returns ``value`` if any of ``constraints`` holds; raises otherwise.

    Raises:
        InvalidParameterError: "`name` must be …, but got …".

    Example:
        >>> check("workers", 2, [Interval(int, 1, None), Options(["auto"])])
        2
    """
    if not any(make_constraint(c).is_satisfied_by(value) for c in constraints):
        raise InvalidParameterError(
            f"`{name}` must be {describe(constraints)}, but got {_brief(value)}"
        )
    return value


def validate_params(constraints: Mapping[str, Sequence[Any]], values: Mapping[str, Any]) -> None:
    """Checks every declared parameter present in ``values`` against its constraints.

    Args:
        constraints: Parameter name -> the constraints of which any one must hold.
        values: Parameter name -> value (names without a declaration are ignored).

    Raises:
        InvalidParameterError: For the first parameter that breaks its constraints.
    """
    for name, declared in constraints.items():
        if name in values:
            check(name, values[name], declared)


def invalid_values(constraints: Sequence[Any]) -> list[Any]:
    """Values that satisfy none of ``constraints``, derived from their declarations.

    Example:
        >>> invalid_values([Interval(int, 1, None), None])[:3]
        ['1', True, nan]
    """
    made = [make_constraint(c) for c in constraints]
    out: list[Any] = []
    for constraint in made:
        for value in constraint.invalid_examples():
            if not any(c.is_satisfied_by(value) for c in made):
                out.append(value)
    return out
