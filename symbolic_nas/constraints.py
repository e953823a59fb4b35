"""The declarative constraints: the rules a parameter's value may satisfy.

A declaration lists, per parameter, constraints of which any one must hold:
:class:`Interval`, :class:`Options`, :class:`InstanceOf`, :class:`Satisfies`,
:class:`SequenceOf`, or a shorthand that :func:`make_constraint` turns into one
(``None``, a type, ``"boolean"``, ``"callable"``, ``"path"``). Each says what it
allows in words (:func:`describe`) and proposes values that break it. Checking
arguments against a declaration, and the one error message, live in
:mod:`symbolic_nas.validation`, which re-exports every name here.

Example:
    >>> from symbolic_nas.constraints import Interval, describe
    >>> describe([Interval(int, 1, None), None])
    'an int >= 1 or None'
"""

from __future__ import annotations

import abc
import math
import numbers
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

__all__ = [
    "Constraint",
    "InstanceOf",
    "Interval",
    "Options",
    "Satisfies",
    "SequenceOf",
    "describe",
    "make_constraint",
]


class Constraint(abc.ABC):
    """One rule a value may satisfy; a parameter is valid when any of its rules holds."""

    @abc.abstractmethod
    def is_satisfied_by(self, value: Any) -> bool:
        """Whether ``value`` satisfies this rule."""

    @abc.abstractmethod
    def __str__(self) -> str:
        """The rule in words, to follow "must be" ("an int >= 1")."""

    def plural(self) -> str | None:
        """The rule for several values ("ints >= 1"), or None if it has no plural."""
        return None

    def invalid_examples(self) -> list[Any]:
        """Values near this rule that break it (for generated tests)."""
        return [object()]


class _NoneConstraint(Constraint):
    def is_satisfied_by(self, value: Any) -> bool:
        return value is None

    def __str__(self) -> str:
        return "None"

    def invalid_examples(self) -> list[Any]:
        return [0, "None"]


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _article(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


class Interval(Constraint):
    """A number of a kind (``int`` or ``float``; a float accepts ints too) in a range.

    A missing end (None) is infinite; as in scikit-learn, ``closed`` says whether
    it belongs to the range, so ``Interval(float, 0, None, closed="neither")`` is
    a *finite* number > 0, while ``Interval(float, 0, None)`` admits ``inf``.
    NaN, bools and strings never belong to an interval.

    Args:
        kind: ``int`` or ``float``.
        low: The lower end, or None for -inf.
        high: The upper end, or None for +inf.
        closed: Which ends belong to the range: ``"both"``, ``"left"``, ``"right"``
            or ``"neither"``.

    Example:
        >>> str(Interval(float, 0, 1, closed="right"))
        'a number in (0, 1]'
        >>> str(Interval(float, 0, None, closed="left")), str(Interval(int, 2, None))
        ('a finite number >= 0', 'an int >= 2')
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
        if closed not in ("both", "left", "right", "neither"):
            raise ValueError(
                f"`closed` must be one of ('both', 'left', 'right', 'neither'), but got {closed!r}"
            )
        if low is not None and high is not None and low > high:
            raise ValueError(f"`low` must be <= `high` ({high!r}), but got {low!r}")
        self.kind, self.low, self.high, self.closed = kind, low, high, closed
        self._left = closed in ("both", "left")
        self._right = closed in ("both", "right")

    def is_satisfied_by(self, value: Any) -> bool:
        if not (_is_int(value) if self.kind is int else _is_real(value)):
            return False
        if not isinstance(value, numbers.Integral) and math.isnan(value):
            return False
        low = -math.inf if self.low is None else self.low
        high = math.inf if self.high is None else self.high
        if value < low or (value == low and not self._left):
            return False
        return not (value > high or (value == high and not self._right))

    def _words(self, plural: bool) -> str:
        # Say "finite" where neither infinity belongs and a missing end does not say so.
        no_low_inf = self.low is not None or not self._left
        no_high_inf = self.high is not None or not self._right
        finite = no_low_inf and no_high_inf and (self.low is None or self.high is None)
        noun = "int" if self.kind is int else ("finite number" if finite else "number")
        noun = f"{noun}s" if plural else _article(noun)
        if self.low is not None and self.high is not None:
            left, right = "[" if self._left else "(", "]" if self._right else ")"
            return f"{noun} in {left}{self.low}, {self.high}{right}"
        if self.low is not None:
            return f"{noun} {'>=' if self._left else '>'} {self.low}"
        if self.high is not None:
            return f"{noun} {'<=' if self._right else '<'} {self.high}"
        if self.kind is float and self._left != self._right:
            return f"{noun} {'< inf' if self._left else '> -inf'}"
        return noun

    def __str__(self) -> str:
        return self._words(plural=False)

    def plural(self) -> str:
        return self._words(plural=True)

    def invalid_examples(self) -> list[Any]:
        out: list[Any] = ["1", True, float("nan")]
        if self.kind is int:
            out.append(1.5)
        if self.low is not None:
            out.append(self.low - 1 if self._left else self.low)
        elif self.kind is float and not self._left:
            out.append(-math.inf)
        if self.high is not None:
            out.append(self.high + 1 if self._right else self.high)
        elif self.kind is float and not self._right:
            out.append(math.inf)
        return out


class Options(Constraint):
    """One of a fixed set of values (of the same type: ``True`` is not ``1``).

    Example:
        >>> str(Options(("adam", "sgd"))), str(Options(["auto"]))
        ("one of ('adam', 'sgd')", "'auto'")
    """

    def __init__(self, options: Iterable[Any]) -> None:
        self.options: list[Any] | tuple[Any, ...] = (
            options if isinstance(options, (list, tuple)) else list(options)
        )
        if not self.options:
            raise ValueError(f"`options` must be a non-empty iterable, but got {options!r}")

    def is_satisfied_by(self, value: Any) -> bool:
        try:
            return any(type(value) is type(o) and value == o for o in self.options)
        except Exception:
            return False

    def __str__(self) -> str:
        return repr(self.options[0]) if len(self.options) == 1 else f"one of {self.options!r}"

    def invalid_examples(self) -> list[Any]:
        return ["<not an option>", 12345, None]


class InstanceOf(Constraint):
    """An instance of one of ``types`` (a ``bool`` only when ``bool`` is one of them).

    Example:
        >>> str(InstanceOf(bool)), str(InstanceOf(int)), InstanceOf(int).is_satisfied_by(True)
        ('a bool', 'an int', False)
    """

    def __init__(self, types: type | tuple[type, ...], description: str | None = None) -> None:
        self.types = types if isinstance(types, tuple) else (types,)
        self._names = " or ".join(t.__name__ for t in self.types)
        self.description = description or _article(self._names)

    def is_satisfied_by(self, value: Any) -> bool:
        if bool not in self.types and isinstance(value, bool):
            return False
        return isinstance(value, self.types)

    def __str__(self) -> str:
        return self.description

    def plural(self) -> str:
        return f"{self._names} objects"

    def invalid_examples(self) -> list[Any]:
        return [object(), "x" if str not in self.types else 3]


class Satisfies(Constraint):
    """Any rule given as a predicate (an exception in it means False) and its description.

    Args:
        predicate: Whether a value satisfies the rule.
        description: The rule in words, to follow "must be".
        invalid: Values that break the rule, for generated tests.
        plural: The rule for several values, used by :class:`SequenceOf`.

    Example:
        >>> odd = Satisfies(lambda v: v % 2 == 1, "an odd int", invalid=[2], plural="odd ints")
        >>> str(odd), odd.is_satisfied_by(3), odd.is_satisfied_by("3")
        ('an odd int', True, False)
    """

    def __init__(
        self,
        predicate: Callable[[Any], bool],
        description: str,
        invalid: Sequence[Any] = (),
        *,
        plural: str | None = None,
    ) -> None:
        self.predicate, self.description, self.invalid = predicate, description, list(invalid)
        self._plural = plural

    def is_satisfied_by(self, value: Any) -> bool:
        try:
            return bool(self.predicate(value))
        except Exception:
            return False

    def __str__(self) -> str:
        return self.description

    def plural(self) -> str | None:
        return self._plural

    def invalid_examples(self) -> list[Any]:
        return [*self.invalid, object()]


class SequenceOf(Constraint):
    """A list or tuple (not a string) whose items each satisfy one of ``item``.

    Args:
        item: The constraint of every item (or a list of them, any one of which holds).
        min_len: The fewest items.
        distinct: Whether items must differ from each other.
        description: The rule in words, instead of the one made from the others.

    Example:
        >>> str(SequenceOf(Interval(int, 1, None), min_len=1, distinct=True))
        'a non-empty sequence of distinct ints >= 1'
        >>> str(SequenceOf([Interval(int, 0, None), None]))
        'a sequence of items, each an int >= 0 or None'
    """

    def __init__(
        self,
        item: Any,
        *,
        min_len: int = 0,
        distinct: bool = False,
        description: str | None = None,
    ) -> None:
        specs = item if isinstance(item, list) else [item]
        self.items = [make_constraint(c) for c in specs]
        self.min_len, self.distinct, self.description = min_len, distinct, description

    def is_satisfied_by(self, value: Any) -> bool:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            return False
        if len(value) < self.min_len:
            return False
        if not all(any(c.is_satisfied_by(v) for c in self.items) for v in value):
            return False
        return not (self.distinct and _has_repeats(value))

    def __str__(self) -> str:
        if self.description is not None:
            return self.description
        plural = self.items[0].plural() if len(self.items) == 1 else None
        if plural is None:
            plural = f"items, each {describe(self.items)}"
        if self.distinct:
            plural = f"distinct {plural}"
        if self.min_len > 1:
            return f"a sequence of at least {self.min_len} {plural}"
        return f"{'a non-empty' if self.min_len == 1 else 'a'} sequence of {plural}"

    def invalid_examples(self) -> list[Any]:
        bad = [
            v
            for c in self.items
            for v in c.invalid_examples()
            if not any(other.is_satisfied_by(v) for other in self.items)
        ]
        return ["abc", 7, *([[bad[0]]] if bad else []), *([[]] if self.min_len else [])]


def _has_repeats(values: Sequence[Any]) -> bool:
    try:
        return len(set(values)) != len(values)
    except TypeError:  # unhashable items (lists): compare them pairwise
        return any(values[i] == values[j] for i in range(len(values)) for j in range(i))


def _is_path(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike)) and bool(os.fspath(value))


def make_constraint(spec: Any) -> Constraint:
    """A :class:`Constraint` from a declaration item: a Constraint, ``None``, a type,
    ``"callable"``, ``"boolean"`` or ``"path"`` (a non-empty str or ``os.PathLike``).

    Example:
        >>> [str(make_constraint(spec)) for spec in (None, "boolean", "path", int)]
        ['None', 'a bool', 'a non-empty path', 'an int']
    """
    if isinstance(spec, Constraint):
        return spec
    if spec is None:
        return _NoneConstraint()
    if isinstance(spec, str) and spec == "boolean":
        return InstanceOf(bool)
    if isinstance(spec, str) and spec == "callable":
        return Satisfies(callable, "a callable", invalid=[3])
    if isinstance(spec, str) and spec == "path":
        return Satisfies(_is_path, "a non-empty path", invalid=["", 3])
    if isinstance(spec, type):
        return InstanceOf(spec)
    raise ValueError(
        "`spec` must be a Constraint, None, a type, 'callable', 'boolean' or 'path', "
        f"but got {spec!r}"
    )


def describe(constraints: Sequence[Any]) -> str:
    """The constraints in words, joined with "or", in the order declared.

    Example:
        >>> describe([Interval(int, 1, None), None]), describe([None, Options(["auto"])])
        ('an int >= 1 or None', "None or 'auto'")
    """
    return " or ".join(str(make_constraint(c)) for c in constraints)
