"""Decisions of a compiled space: what each token position means.

Shared by the compiler (:mod:`symbolic_nas.space.compiler`) and the codec
(:mod:`symbolic_nas.space.codec`).
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pyglove as pg

from symbolic_nas.space.annotate import Annotated
from symbolic_nas.space.symbolic import Call

__all__ = [
    "CATEGORICAL",
    "DEFAULT_FLOAT_BINS",
    "FLOAT",
    "SUBSET",
    "Decision",
    "MaskRule",
    "Step",
]

CATEGORICAL = "categorical"
SUBSET = "subset"
FLOAT = "float"

DEFAULT_FLOAT_BINS = 10


class MaskRule(enum.IntEnum):
    """How the earlier tokens of its group restrict a decision's valid tokens.

    The codec applies the rule (:meth:`~symbolic_nas.space.walker.Walker.mask`);
    controllers ask :attr:`Decision.mask_rule` which decisions need a walker.

    Attributes:
        FREE: No restriction: every token of the vocabulary is valid.
        PICK: A ``manyof`` pick that must differ from (``distinct``) or not come
            before (``sorted``) the group's earlier picks.
        EXACT: A member of an anchor-form ``manyof``: exactly ``required`` of the
            group's members are chosen.
    """

    FREE = 0
    PICK = 1
    EXACT = 2


@dataclasses.dataclass(frozen=True)
class Decision:
    """One decision point of a space.

    Attributes:
        index: Position in :attr:`Codec.decisions` (PyGlove's depth-first order,
            inactive branches included).
        id: PyGlove's decision id (``"[=1/2].blocks[1].kernel"``); members of an
            anchor-form ``manyof`` get ``"<id>.anchor[j]"``.
        name: A readable unique name: the placeholder's ``name``, else ``id``
            without its branch markers ``[=i/n]`` (``"blocks[1].kernel"``), or the
            whole ``id`` where dropping them would make two names equal
            (``"<root>"`` for a placeholder at the root).
        kind: ``"categorical"``, ``"subset"`` (one binary membership token of a
            subset/anchor decision) or ``"float"`` (discretised into bins).
        vocab_size: Number of tokens.
        values: The value each token stands for (candidate literals, bin values,
            ``(False, True)`` for subset members); a candidate that is not a plain
            literal is given by its label.
        labels: A short unique string per token: the candidate's name when the
            candidates were given as a dict, else one derived from its value (a
            literal's text, a module call's class name plus the arguments that tell
            it from its siblings, ``Net(width=32)``).
        parent: Index of the decision whose choice makes this one active, or None.
        parent_value: The token of ``parent`` that makes this one active, or None.
        hints: The hints given on the placeholder.
        group: For ``manyof`` picks and subset members: the index of the group's
            first decision; None otherwise.
        group_index: Position within the group (pick ``j`` or candidate ``j``).
        group_size: Number of picks (pick form) or candidates (subset form).
        required: For an anchor-form ``manyof``: how many members must be chosen.
        distinct: For picks: picks must differ.
        sorted: For picks: picks must be in candidate order.
        anchor: The anchor key of a subset/anchor group (``hints["anchor"]``).
        source: For subset members: the candidate's value (a literal), which may
            name the anchor of an earlier group.
        low: For floats: the lower bound. high: the upper bound. scale: the scale.
        depth: Nesting depth (0 at the root).
        fingerprint_labels: The labels that the run directory's space fingerprint
            hashes: those of versions before candidates had names, so that a run
            directory made then still resumes; empty when equal to ``labels``.
    """

    index: int
    id: str
    name: str
    kind: str
    vocab_size: int
    values: tuple[Any, ...]
    labels: tuple[str, ...]
    parent: int | None
    parent_value: int | None
    hints: Any = None
    group: int | None = None
    group_index: int = 0
    group_size: int = 1
    required: int | None = None
    distinct: bool = False
    sorted: bool = False
    anchor: Hashable | None = None
    source: Any = None
    low: float | None = None
    high: float | None = None
    scale: str | None = None
    depth: int = 0
    fingerprint_labels: tuple[str, ...] = ()

    @property
    def mask_rule(self) -> MaskRule:
        """How earlier tokens of its group restrict this decision (the one home of
        that rule; the codec's masks and the controllers follow it).

        Example:
            >>> import symbolic_nas as sn
            >>> picks = sn.manyof(2, ["a", "b", "c"])   # distinct picks
            >>> anchors = sn.manyof(1, [0, 1], sorted=True, hints={"anchor": 2})
            >>> codec = sn.encode({"k": sn.oneof([3, 5]), "p": picks, "a": anchors})
            >>> [d.mask_rule.name for d in codec.decisions]
            ['FREE', 'PICK', 'PICK', 'EXACT', 'EXACT']
        """
        if self.required is not None:
            return MaskRule.EXACT
        if self.group is not None and self.kind == CATEGORICAL and (self.distinct or self.sorted):
            return MaskRule.PICK
        return MaskRule.FREE

    @property
    def share_key(self) -> Hashable | None:
        """``hints["share"]`` when given: decisions with equal keys may share a head."""
        return self.hints.get("share") if isinstance(self.hints, dict) else None


@dataclasses.dataclass(frozen=True)
class Step:
    """The next decision of a prefix and the tokens that are valid there."""

    decision: Decision
    mask: np.ndarray  # bool, shape (vocab_size,)

    @property
    def valid_tokens(self) -> list[int]:
        return [int(t) for t in np.flatnonzero(self.mask)]


def is_literal(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def label_of(value: Any) -> str:
    if isinstance(value, Call):
        return getattr(value.fn, "__name__", "call")
    if isinstance(value, Annotated):
        return f"annotate({type(value.model).__name__})"
    if is_literal(value):
        return str(value)
    text = pg.format(value, compact=True)
    return text if len(text) <= 48 else type(value).__name__


def labels_of(values: Sequence[Any]) -> tuple[str, ...]:
    """The labels of earlier versions (the space fingerprint hashes these)."""
    labels = [label_of(v) for v in values]
    if len(set(labels)) < len(labels):
        labels = [f"{i}:{label}" for i, label in enumerate(labels)]
    return tuple(labels)


def unique(labels: Sequence[str]) -> tuple[str, ...]:
    """``labels``, each prefixed with its index (``"1:fn"``) when two are equal."""
    if len(set(labels)) < len(labels):
        return tuple(f"{i}:{label}" for i, label in enumerate(labels))
    return tuple(labels)


def display_labels(values: Sequence[Any], names: Any = None) -> tuple[str, ...]:
    """Readable unique labels of candidates: their ``names`` when given, else
    :func:`labels_of`'s, where module calls of the same class are told apart by
    the literal arguments in which they differ.

    Example:
        >>> import symbolic_nas as sn, torch.nn as nn
        >>> Linear = sn.symbolize(nn.Linear)
        >>> width = sn.oneof([4, 8])
        >>> display_labels([Linear(width, 8), Linear(width, 16), "skip"])
        ('Linear(out_features=8)', 'Linear(out_features=16)', 'skip')
        >>> display_labels([3, 5], names=["small", "large"])
        ('small', 'large')
    """
    if isinstance(names, (list, tuple)) and len(names) == len(values):
        return tuple(str(n) for n in names)
    labels = [label_of(v) for v in values]
    for label in set(labels):
        same = [i for i, v in enumerate(values) if labels[i] == label and isinstance(v, Call)]
        if len(same) < 2 or len(same) < labels.count(label):
            continue
        arguments = [values[i].arguments() for i in same]
        keys = [k for k in arguments[0] if all(k in a for a in arguments)]
        differ = [
            k
            for k in keys
            if all(is_literal(a[k]) for a in arguments) and len({repr(a[k]) for a in arguments}) > 1
        ]
        for i, a in zip(same, arguments):
            if differ:
                labels[i] = f"{label}({', '.join(f'{k}={a[k]!r}' for k in differ)})"
    return unique(labels)


_BRANCH = re.compile(r"\[=\d+/\d+\]")


def readable_name(ident: str) -> str:
    """A decision id without its branch markers (``"[=1/2].blocks[1].kernel"`` ->
    ``"blocks[1].kernel"``); ``"<root>"`` for the root.

    Example:
        >>> readable_name("model.body[0][=0/3].kernel"), readable_name("")
        ('model.body[0].kernel', '<root>')
    """
    return _BRANCH.sub("", ident).lstrip(".") or "<root>"


def float_bins(low: float, high: float, scale: str | None, bins: int) -> np.ndarray:
    if scale == "log":
        values = np.geomspace(low, high, bins)
    elif scale == "rlog":
        values = (low + high - np.geomspace(low, high, bins))[::-1]
    else:
        values = np.linspace(low, high, bins)
    # Rounding (``low + high - x``) may step just outside the range, which PyGlove
    # rejects: the ends are the range's own ends, every bin lies within it.
    values = np.clip(values, low, high)
    values[0] = low
    if bins > 1:
        values[-1] = high
    return values


def float_label(value: float) -> str:
    """The label of a float decision's value (its bins' labels and exact values alike).

    Example:
        >>> float_label(0.0031622776601683794), float_label(0.1)
        ('0.00316228', '0.1')
    """
    return f"{value:.6g}"


def float_to_unit(dec: Decision, value: float) -> float:
    """Where ``value`` lies in a float decision's range, on its scale: 0 at ``low``,
    1 at ``high``, linear in ``log(x)`` for ``scale="log"`` and in
    ``log(low + high - x)`` for ``"rlog"``; :func:`float_from_unit` is its inverse.

    Example:
        >>> import symbolic_nas as sn
        >>> dec = sn.encode({"lr": sn.floatv(1e-4, 1e-2, scale="log")}).decisions[0]
        >>> round(float_to_unit(dec, 1e-3), 6), round(float_from_unit(dec, 0.5), 9)
        (0.5, 0.001)
    """
    low, high = float(dec.low), float(dec.high)  # type: ignore[arg-type]
    if dec.scale == "log":
        return (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
    if dec.scale == "rlog":
        mirrored = math.log(max(low + high - value, 1e-300))
        return (math.log(high) - mirrored) / (math.log(high) - math.log(low))
    return (value - low) / (high - low)


def float_from_unit(dec: Decision, unit: float) -> float:
    """The value of a float decision at ``unit`` in ``[0, 1]`` of its range, on its
    scale (the inverse of :func:`float_to_unit`), kept within ``[low, high]``."""
    low, high = float(dec.low), float(dec.high)  # type: ignore[arg-type]
    if dec.scale == "log":
        value = math.exp(math.log(low) + unit * (math.log(high) - math.log(low)))
    elif dec.scale == "rlog":
        value = low + high - math.exp(math.log(high) - unit * (math.log(high) - math.log(low)))
    else:
        value = low + unit * (high - low)
    return min(max(value, low), high)
