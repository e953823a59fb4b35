"""Declarative parameter validation with one message template (scikit-learn's style).

A public constructor declares each parameter's constraints once, as a list of
which any one must hold, and checks its arguments with :func:`validate_params`
(a function, with the :func:`validates` decorator). Every violation raises
:class:`InvalidParameterError` (a ``ValueError`` and a ``TypeError``) with one
message template::

    `name` must be <what the constraints allow>, but got <value>

Classes keep their declaration in a ``_parameter_constraints`` class attribute (a
subclass's dict merges its base's); functions expose it as
``function.parameter_constraints``. Rules that tie several parameters together
(``low < high``) stay as extra checks that raise :func:`parameter_error`.

The declarations also generate invalid values (:func:`invalid_values`), so one
test checks every public constructor against its own declaration. The constraint
classes themselves live in :mod:`symbolic_nas.constraints`; every name is
importable from here.

Example:
    >>> from symbolic_nas.validation import Interval, validate_params
    >>> CONSTRAINTS = {"epochs": [Interval(int, 1, None)],
    ...                "lr": [Interval(float, 0, None, closed="neither")]}
    >>> validate_params(CONSTRAINTS, {"epochs": 3, "lr": 0.1})
    >>> validate_params(CONSTRAINTS, {"epochs": 0, "lr": 0.1})
    Traceback (most recent call last):
    ...
    symbolic_nas.validation.InvalidParameterError: `epochs` must be an int >= 1, but got 0
    >>> validate_params(CONSTRAINTS, {"lr": float("inf")})
    Traceback (most recent call last):
    ...
    symbolic_nas.validation.InvalidParameterError: `lr` must be a finite number > 0, but got inf
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

from symbolic_nas.constraints import (
    Constraint,
    InstanceOf,
    Interval,
    Options,
    Satisfies,
    SequenceOf,
    describe,
    make_constraint,
)

__all__ = [
    "Constraint",
    "InstanceOf",
    "Interval",
    "InvalidParameterError",
    "Options",
    "Satisfies",
    "SequenceOf",
    "brief",
    "check",
    "describe",
    "invalid_values",
    "keyword_parameters",
    "make_constraint",
    "parameter_error",
    "validate_params",
    "validates",
]

F = TypeVar("F", bound=Callable[..., Any])


class InvalidParameterError(ValueError, TypeError):
    """An argument breaks its declared constraints (both a ``ValueError`` and a ``TypeError``).

    Example:
        >>> issubclass(InvalidParameterError, ValueError)
        True
        >>> issubclass(InvalidParameterError, TypeError)
        True
    """


def brief(value: Any) -> str:
    """``repr(value)`` cut to 200 characters; arrays and tensors by type, shape and dtype.

    Example:
        >>> brief("x" * 300)[-5:], brief(3)
        ('xx...', '3')
    """
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if shape is not None and dtype is not None and not isinstance(value, (str, bytes)):
        return f"{type(value).__name__}(shape={tuple(shape)}, dtype={dtype})"
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def parameter_error(
    name: str, rule: str, value: Any, *, context: str | None = None
) -> InvalidParameterError:
    """The error "`name` must be <rule>, but got <value>" (for rules no declaration holds).

    Args:
        name: The parameter.
        rule: What it must be, to follow "must be".
        value: What it is.
        context: Other values the rule depends on, added in parentheses.

    Example:
        >>> raise parameter_error("high", "> low (3)", 2)
        Traceback (most recent call last):
        ...
        symbolic_nas.validation.InvalidParameterError: `high` must be > low (3), but got 2
    """
    extra = f" ({context})" if context else ""
    return InvalidParameterError(f"`{name}` must be {rule}, but got {brief(value)}{extra}")


def check(name: str, value: Any, constraints: Sequence[Any]) -> Any:
    """Returns ``value`` if any of ``constraints`` holds; raises otherwise.

    Raises:
        InvalidParameterError: "`name` must be …, but got …".

    Example:
        >>> check("workers", 2, [Options(["auto"]), Interval(int, 1, None)])
        2
        >>> check("workers", 0, [Options(["auto"]), Interval(int, 1, None)])
        Traceback (most recent call last):
        ...
        symbolic_nas.validation.InvalidParameterError: `workers` must be 'auto' or an int >= 1, but got 0
    """  # noqa: E501
    if not any(make_constraint(c).is_satisfied_by(value) for c in constraints):
        raise parameter_error(name, describe(constraints), value)
    return value


def validate_params(constraints: Mapping[str, Sequence[Any]], values: Mapping[str, Any]) -> None:
    """Checks every declared parameter present in ``values`` against its constraints.

    Args:
        constraints: Parameter name -> the constraints of which any one must hold.
        values: Parameter name -> value (names without a declaration are ignored).

    Raises:
        InvalidParameterError: For the first parameter, in declaration order, that
            breaks its constraints.
    """
    for name, declared in constraints.items():
        if name in values:
            check(name, values[name], declared)


def validates(constraints: Mapping[str, Sequence[Any]]) -> Callable[[F], F]:
    """Decorator: a function that validates its arguments (defaults included) first.

    The declaration is kept as ``function.parameter_constraints``; every declared
    name must be a parameter of the function.

    Example:
        >>> @validates({"depth": [Interval(int, 1, None)]})
        ... def tower(*, depth: int = 2) -> list[int]:
        ...     return list(range(depth))
        >>> tower(depth=3), sorted(tower.parameter_constraints)
        ([0, 1, 2], ['depth'])
        >>> tower(depth=0)
        Traceback (most recent call last):
        ...
        symbolic_nas.validation.InvalidParameterError: `depth` must be an int >= 1, but got 0
    """

    def decorate(function: F) -> F:
        signature = inspect.signature(function)
        unknown = sorted(set(constraints) - set(signature.parameters))
        if unknown:
            raise ValueError(
                f"`constraints` must name parameters of {function.__qualname__}, but got {unknown}"
            )

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            validate_params(constraints, bound.arguments)
            return function(*args, **kwargs)

        setattr(wrapper, "parameter_constraints", constraints)  # noqa: B010
        return cast(F, wrapper)

    return decorate


def invalid_values(constraints: Sequence[Any]) -> list[Any]:
    """Values that satisfy none of ``constraints``, derived from their declarations.

    Example:
        >>> invalid_values([Interval(int, 1, None), None])
        ['1', True, nan, 1.5, 0, 'None']
    """
    made = [make_constraint(c) for c in constraints]
    out: dict[tuple[type, str], Any] = {}
    for constraint in made:
        for value in constraint.invalid_examples():
            if not any(c.is_satisfied_by(value) for c in made):
                out.setdefault((type(value), repr(value)), value)
    return list(out.values())


def keyword_parameters(factory: Callable[..., Any]) -> list[str] | None:
    """The names ``factory`` accepts as keyword arguments; None when it takes any
    (``**kwargs``) or has no signature.

    Example:
        >>> keyword_parameters(lambda a, *, b=1: a), keyword_parameters(dict)
        (['a', 'b'], None)
    """
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in parameters if p.kind in kinds]
