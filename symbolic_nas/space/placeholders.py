"""Choice placeholders: PyGlove's hyper primitives, validated, plus ``intv`` and ``subset``.

``oneof``, ``manyof``, ``floatv`` and ``permutate`` return PyGlove's own hyper
primitives (``pg.oneof`` and friends); they only add argument checks with clear
messages. ``intv`` (an inclusive integer range) and ``subset`` (a variable-size
subset, the form skip connections take) are ours and are built from ``pg.oneof``,
so every PyGlove tool (``pg.dna_spec``, ``pg.random_dna``, ``pg.sample``) still
understands a space that uses them.

Candidates may be a list or a dict from names to values
(``sn.oneof({"small": 3, "large": 5})``): the names become the decision's
labels (in ``Decision.labels``, reports and TensorBoard), the values are what
materialises.

Hints recognised by the encoder (pass them as ``hints={...}``):

* ``"share"``: a key; decisions with the same key may share one controller head.
* ``"bins"``: number of tokens a ``floatv`` is discretised into (default 10).
* ``"labels"``: the candidates' names (set for you when candidates are a dict).
* ``"anchor"``: marks a ``manyof`` (or names a ``subset``) as an anchor/skip
  decision, encoded as one binary token per candidate. Its value is the anchor
  key of the decision, so that candidates of later subsets can refer to it.

Typing: a placeholder stands where its value will be, so type checkers see the type
of the value it materialises into (as ``dataclasses.field()`` has the type of its
field): ``oneof(candidates)`` has the candidates' type, ``manyof``, ``permutate``
and ``subset`` a list of it, ``floatv`` a ``float`` and ``intv`` an ``int``. A space
``Block(kernel=oneof([3, 5]))`` therefore type-checks against ``kernel: int``, and
``Block(kernel=oneof(["3x3"]))`` is reported. At run time they are PyGlove's hyper
primitives (and :class:`Subset`), as described below.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast, overload

import pyglove as pg

from symbolic_nas.validation import InvalidParameterError

__all__ = ["Subset", "floatv", "intv", "manyof", "oneof", "permutate", "subset"]

_T = TypeVar("_T")

_MAX_INTV_SIZE = 100_000
_FLOAT_SCALES = (None, "linear", "log", "rlog")


def _candidates(candidates: Any, what: str) -> list[Any]:
    """``candidates`` as a list; a TypeError if it is no list, a ValueError if empty."""
    if isinstance(candidates, (str, bytes)) or not isinstance(candidates, Iterable):
        raise TypeError(
            f"`candidates` of {what} must be a list of values or a dict from names to "
            f"values, but got {candidates!r}"
        )
    values = list(candidates.values()) if isinstance(candidates, Mapping) else list(candidates)
    if not values:
        raise ValueError(f"`candidates` of {what} must be a non-empty list, but got {values!r}")
    return values


def _named(candidates: Any, hints: Any, what: str) -> Any:
    """``hints`` plus ``"labels"`` (the names) when ``candidates`` is a dict."""
    if not isinstance(candidates, Mapping):
        return hints
    names = list(candidates)
    for n in names:
        if not isinstance(n, str) or not n:
            raise TypeError(
                f"each name of the candidates of {what} must be a non-empty str, but got {n!r}"
            )
    if hints is not None and not isinstance(hints, dict):
        raise TypeError(
            f"`hints` of {what} must be a dict or None when candidates are named, but got {hints!r}"
        )
    return dict(hints or {}, labels=names)


def _check_hints(hints: Any, what: str) -> None:
    """Hints are a dict (see the module docs) or None."""
    if hints is not None and not isinstance(hints, dict):
        raise InvalidParameterError(
            f"`hints` of {what} must be a dict or None (such as {{'share': 'ops'}}), "
            f"but got {hints!r}"
        )


@overload
def oneof(
    candidates: Mapping[str, _T], *, name: str | None = None, hints: dict[str, Any] | None = None
) -> _T: ...


@overload
def oneof(
    candidates: Iterable[_T], *, name: str | None = None, hints: dict[str, Any] | None = None
) -> _T: ...


def oneof(
    candidates: Iterable[Any], *, name: str | None = None, hints: dict[str, Any] | None = None
) -> Any:
    """A choice of exactly one candidate (PyGlove's ``pg.oneof``).

    Args:
        candidates: The values to choose from (a list, or a dict from names to
            values: the names label the choices); each may hold placeholders.
        name: Optional unique name of the decision.
        hints: Optional hints for the encoder and controllers (see module docs).

    Returns:
        A ``pg.hyper.OneOf`` (typed as the candidates' type: the value it stands for).

    Example:
        >>> import symbolic_nas as sn
        >>> k = sn.oneof([3, 5, 7])
        >>> len(k.candidates)
        3
        >>> sn.encode(sn.oneof({"small": 3, "large": 5})).decisions[0].labels
        ('small', 'large')
    """
    values = _candidates(candidates, "oneof")
    _check_hints(hints, "oneof")
    return pg.oneof(values, name=name, hints=_named(candidates, hints, "oneof"))


@overload
def manyof(
    k: int,
    candidates: Mapping[str, _T],
    distinct: bool = ...,
    sorted: bool = ...,
    *,
    name: str | None = ...,
    hints: dict[str, Any] | None = ...,
) -> list[_T]: ...


@overload
def manyof(
    k: int,
    candidates: Iterable[_T],
    distinct: bool = ...,
    sorted: bool = ...,
    *,
    name: str | None = ...,
    hints: dict[str, Any] | None = ...,
) -> list[_T]: ...


def manyof(
    k: int,
    candidates: Iterable[Any],
    distinct: bool = True,
    sorted: bool = False,
    *,
    name: str | None = None,
    hints: dict[str, Any] | None = None,
) -> Any:
    """A choice of ``k`` candidates (PyGlove's ``pg.manyof``).

    With ``hints={"anchor": key}`` (and ``distinct=True, sorted=True``) the encoder
    emits one binary token per candidate instead of ``k`` picks: the form an
    attention controller needs for skip connections.

    Args:
        k: Number of picks.
        candidates: Values to pick from (a list, or a dict from names to values).
        distinct: Whether picks must differ.
        sorted: Whether picks must be in candidate order.
        name: Optional unique name of the decision.
        hints: Optional hints (see module docs).

    Returns:
        A ``pg.hyper.ManyOf`` (typed as the list of picks it stands for).

    Example:
        >>> import symbolic_nas as sn
        >>> ops = sn.manyof(2, ["conv", "pool", "skip"], sorted=True)
        >>> ops.num_choices
        2
    """
    values = _candidates(candidates, "manyof")
    _check_hints(hints, "manyof")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"`k` of manyof must be an int >= 1, but got {k!r}")
    if distinct and k > len(values):
        raise ValueError(
            f"`k` of manyof must be <= the number of candidates ({len(values)}) when "
            f"distinct=True, but got {k}"
        )
    hints = _named(candidates, hints, "manyof")
    return pg.manyof(k, values, distinct, sorted, name=name, hints=hints)


@overload
def permutate(
    candidates: Mapping[str, _T], *, name: str | None = None, hints: dict[str, Any] | None = None
) -> list[_T]: ...


@overload
def permutate(
    candidates: Iterable[_T], *, name: str | None = None, hints: dict[str, Any] | None = None
) -> list[_T]: ...


def permutate(
    candidates: Iterable[Any], *, name: str | None = None, hints: dict[str, Any] | None = None
) -> Any:
    """A permutation of all candidates (PyGlove's ``pg.permutate``).

    Returns a ``pg.hyper.ManyOf`` (typed as the list it stands for).

    Example:
        >>> import symbolic_nas as sn
        >>> sn.permutate(["a", "b", "c"]).num_choices
        3
    """
    values = _candidates(candidates, "permutate")
    _check_hints(hints, "permutate")
    return pg.permutate(values, name=name, hints=_named(candidates, hints, "permutate"))


def floatv(
    low: float,
    high: float,
    scale: str | None = None,
    *,
    name: str | None = None,
    hints: dict[str, Any] | None = None,
) -> float:
    """A float in ``[low, high]`` (PyGlove's ``pg.floatv``).

    Returns a ``pg.hyper.Float`` (typed as the ``float`` it stands for).

    The encoder discretises it into ``hints["bins"]`` tokens (default 10),
    evenly spaced on the given scale (``"log"`` spaces them geometrically).

    Example:
        >>> import symbolic_nas as sn
        >>> lr = sn.floatv(1e-4, 1e-1, scale="log", hints={"bins": 7})
        >>> lr.scale
        'log'
    """
    for arg, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"`{arg}` of floatv must be a number, but got {value!r}")
    if not low < high:
        raise ValueError(f"`low` of floatv must be < `high` ({high!r}), but got {low!r}")
    if scale not in _FLOAT_SCALES:
        raise ValueError(f"`scale` of floatv must be one of {_FLOAT_SCALES}, but got {scale!r}")
    if scale in ("log", "rlog") and low <= 0:
        raise ValueError(f"`low` of floatv must be > 0 with scale={scale!r}, but got {low!r}")
    _check_hints(hints, "floatv")
    bins = hints.get("bins") if isinstance(hints, dict) else None
    if bins is not None and (isinstance(bins, bool) or not isinstance(bins, int) or bins < 2):
        raise ValueError(f"`hints['bins']` of floatv must be an int >= 2, but got {bins!r}")
    return pg.floatv(float(low), float(high), scale, name=name, hints=hints)


def intv(
    low: int, high: int, *, name: str | None = None, hints: dict[str, Any] | None = None
) -> int:
    """An integer in ``[low, high]``, both ends included (like ``floatv``).

    PyGlove has no integer placeholder; this is a ``pg.oneof`` over the range, so
    materialised values are real ``int``s and every PyGlove tool understands it
    (typed as the ``int`` it stands for).

    Example:
        >>> import symbolic_nas as sn
        >>> depth = sn.intv(2, 5)
        >>> list(depth.candidates)
        [2, 3, 4, 5]
    """
    for arg, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"`{arg}` of intv must be an int, but got {value!r}")
    if low > high:
        raise ValueError(f"`low` of intv must be <= `high` ({high!r}), but got {low!r}")
    _check_hints(hints, "intv")
    if high - low + 1 > _MAX_INTV_SIZE:
        raise ValueError(
            f"the range of intv must hold at most {_MAX_INTV_SIZE} integers, "
            f"but got [{low}, {high}]"
        )
    return pg.oneof(list(range(low, high + 1)), name=name, hints=hints)


@pg.members(
    [
        ("candidates", pg.typing.List(pg.typing.Any()), "Values that may be chosen."),
        ("mask", pg.typing.List(pg.typing.Any()), "One binary oneof per candidate."),
        ("hints", pg.typing.Any(default=None), "Hints shared by the member decisions."),
    ]
)
class Subset(pg.Object):
    """A variable-size subset of candidates; materialises as the list of chosen ones."""

    def format(
        self, compact: bool = False, verbose: bool = True, root_indent: int = 0, **kw: Any
    ) -> str:
        del compact, verbose, root_indent, kw
        anchor = isinstance(self.hints, dict) and self.hints.get("anchor")
        suffix = "" if anchor in (None, False) else f", anchor={anchor!r}"
        return f"subset({list(self.candidates)!r}{suffix})"


def subset(
    candidates: Sequence[_T] | Mapping[str, _T],
    *,
    anchor: Hashable | None = None,
    name: str | None = None,
    hints: dict[str, Any] | None = None,
) -> list[_T]:
    """Any subset of ``candidates`` (possibly empty), in candidate order.

    Encoded as one binary token per candidate. With ``anchor=key`` it is an
    anchor decision for attention controllers (Zoph & Le 2017's skip
    connections): a candidate whose value equals the ``anchor`` key of an earlier
    subset refers to that subset's anchor point.

    Args:
        candidates: The values that may be chosen (constants): a list, or a dict
            from names to values (member ``j`` is then named by its key,
            ``"inputs[a]"`` rather than ``"inputs.mask[0]"``).
        anchor: Optional anchor key of this subset.
        name: Optional name prefix of the member decisions.
        hints: Optional extra hints (a dict) shared by the member decisions.

    Returns:
        A :class:`Subset` symbolic value (typed as the list of chosen candidates it
        stands for).

    Example:
        >>> import symbolic_nas as sn
        >>> inputs = sn.subset([0, 1, 2], anchor=3)   # which earlier layers feed layer 3
        >>> len(inputs.mask)
        3
    """
    values = _candidates(candidates, "subset")
    _check_hints(hints, "subset")
    names = _named(candidates, None, "subset")
    keys = names["labels"] if names else list(range(len(values)))
    merged = dict(hints or {})
    if anchor is not None:
        merged["anchor"] = anchor
    member = [{"label": key} for key in keys] if names else [{} for _ in keys]
    mask = [
        pg.oneof(
            [False, True],
            name=None if name is None else f"{name}[{key}]",
            hints=dict(merged, source=_literal(value), **extra),
        )
        for key, value, extra in zip(keys, values, member)
    ]
    # Typed as the list it materialises into (see the module docs).
    return cast("list[_T]", Subset(candidates=values, mask=mask, hints=merged or None))


def _literal(value: Any) -> Any:
    """The value itself when it is a plain literal, else its string form."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return pg.format(value, compact=True)
