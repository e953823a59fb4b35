"""The compiler: one pass over a space's DNASpec and value.

It yields the list of :class:`~symbolic_nas.space.decisions.Decision` rows and the
build template (:mod:`symbolic_nas.space.builder`), and links the template into the
next-decision table the codec walks.
"""

from __future__ import annotations

import re
from typing import Any

import pyglove as pg

from symbolic_nas.space import builder
from symbolic_nas.space.decisions import (
    CATEGORICAL,
    DEFAULT_FLOAT_BINS,
    FLOAT,
    SUBSET,
    display_labels,
    float_bins,
    float_label,
    is_literal,
    labels_of,
    readable_name,
)
from symbolic_nas.space.symbolic import _symbolic_argument

__all__ = ["SPEC_ONLY", "Compiler", "link_space", "to_space"]

SPEC_ONLY = object()  # the "value" of a space known only by its DNASpec


def to_space(space: Any) -> Any:
    """Turns what a user may pass as a space into a PyGlove symbolic value."""
    if isinstance(space, (pg.Symbolic, pg.hyper.HyperValue)):
        return space
    if isinstance(space, (list, dict, tuple)):
        converted = _symbolic_argument(space, "space")
        if isinstance(converted, list):
            return pg.List(converted)
        if isinstance(converted, dict):
            return pg.Dict(converted)
        return converted
    kind = type(space).__name__
    hint = (
        " (use sn.annotate(model, rules) for an existing model)"
        if hasattr(space, "named_modules")
        else ""
    )
    raise TypeError(
        "`space` must be a symbolic value holding placeholders (oneof, manyof, floatv, "
        f"intv, permutate), a list or dict of them, or a value made by sn.annotate, "
        f"but got a {kind}{hint}"
    )


class Compiler:
    """One pass over the DNASpec and the value: decisions plus the build template."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.groups: dict[int, int] = {}  # id(Subset) -> index of its first member
        self.derived: list[bool] = []  # whether each row's name was derived from its id

    def new(self, *, derived: bool = False, **fields: Any) -> int:
        index = len(self.rows)
        self.rows.append(dict(fields, index=index))
        self.derived.append(derived)
        return index

    def unique_names(self) -> list[dict[str, Any]]:
        """The rows, where derived names that collide with another name fall back
        to the decision's id (ids are unique)."""
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row["name"]] = counts.get(row["name"], 0) + 1
        for row, derived in zip(self.rows, self.derived):
            if derived and counts[row["name"]] > 1:
                row["name"] = row["id"] or "<root>"
        return self.rows

    def space(
        self,
        spec: pg.geno.Space,
        value: Any,
        parent: int | None,
        parent_value: int | None,
        depth: int,
    ) -> builder.SpaceTemplate:
        found: dict[int, builder.SlotInfo] = {}
        node: builder.Node
        if value is SPEC_ONLY:
            found = {i: builder.SlotInfo(None) for i in range(len(spec.elements))}
            node = builder.UnavailableNode()
        else:
            slots = {str(e.location): i for i, e in enumerate(spec.elements)}
            node = builder.compile_value(value, pg.KeyPath(), slots, found)
        for i, element in enumerate(spec.elements):
            if i not in found:
                raise TypeError(f"unsupported placeholder at {element.id or '<root>'}")
        elements = [
            self.element(e, found[i], parent, parent_value, depth)
            for i, e in enumerate(spec.elements)
        ]
        return builder.SpaceTemplate(node, elements)

    def element(
        self,
        e: Any,
        info: builder.SlotInfo,
        parent: int | None,
        parent_value: int | None,
        depth: int,
    ) -> builder.Element:
        common = dict(parent=parent, parent_value=parent_value, hints=e.hints, depth=depth)
        ident = str(e.id)
        name = e.name or readable_name(ident)
        common["derived"] = not e.name
        if isinstance(e, pg.geno.Float):
            bins = e.hints.get("bins", DEFAULT_FLOAT_BINS) if isinstance(e.hints, dict) else None
            grid = tuple(
                float(v)
                for v in float_bins(e.min_value, e.max_value, e.scale, bins or DEFAULT_FLOAT_BINS)
            )
            d = self.new(
                id=ident,
                name=name,
                kind=FLOAT,
                vocab_size=len(grid),
                values=grid,
                labels=tuple(float_label(v) for v in grid),
                low=e.min_value,
                high=e.max_value,
                scale=e.scale,
                **common,
            )
            return builder.FloatElement(d, grid)
        if not isinstance(e, pg.geno.Choices):
            raise TypeError(
                f"unsupported placeholder at {ident or '<root>'}: {type(e).__name__}; "
                "symbolic_nas supports oneof, manyof, permutate, floatv, intv and subset"
            )
        if info.hyper is None:  # a codec made from a DNASpec alone
            literals = list(e.literal_values)
            candidates = [SPEC_ONLY] * len(literals)
            is_oneof = e.num_choices == 1
        else:
            literals = candidates = list(info.hyper.candidates)
            is_oneof = isinstance(info.hyper, pg.hyper.OneOf)
        hints = e.hints if isinstance(e.hints, dict) else {}
        keys = labels_of(literals)
        labels = display_labels(literals, hints.get("labels"))
        values = tuple(
            v if is_literal(v) and "module" not in hints else label
            for v, label in zip(literals, labels)
        )
        common["fingerprint_labels"] = () if keys == labels else keys
        if info.subset is not None and "label" in hints and not e.name:
            name = re.sub(r"\.?mask\[\d+\]$", f"[{hints['label']}]", name)
        if "anchor" in hints and not is_oneof:
            return self.binary(e, candidates, values, common)
        if is_oneof:
            extra: dict[str, Any] = dict(kind=CATEGORICAL)
            if info.subset is not None:
                j, size, owner = info.subset
                group = self.groups.setdefault(id(owner), len(self.rows))
                owner_hints = owner.hints if isinstance(owner.hints, dict) else {}
                extra = dict(
                    kind=SUBSET,
                    group=group,
                    group_index=j,
                    group_size=size,
                    anchor=owner_hints.get("anchor"),
                    source=hints.get("source"),
                )
            d = self.new(
                id=ident,
                name=name,
                vocab_size=len(candidates),
                values=values,
                labels=labels,
                **extra,
                **common,
            )
            subspaces = [
                self.space(e.candidates[t], candidates[t], d, t, depth + 1)
                for t in range(len(candidates))
            ]
            return builder.ChoiceElement(d, subspaces)
        decisions, picks = [], []
        group = len(self.rows)
        for j in range(e.num_choices):
            sub = e.subchoice(j)
            d = self.new(
                id=str(sub.id),
                name=f"{name}[{j}]" if e.name else readable_name(str(sub.id)),
                kind=CATEGORICAL,
                vocab_size=len(candidates),
                values=values,
                labels=labels,
                group=group,
                group_index=j,
                group_size=e.num_choices,
                distinct=e.distinct,
                sorted=e.sorted,
                **common,
            )
            decisions.append(d)
            picks.append(
                [
                    self.space(sub.candidates[t], candidates[t], d, t, depth + 1)
                    for t in range(len(candidates))
                ]
            )
        return builder.PicksElement(decisions, picks)

    def binary(
        self, e: Any, candidates: list[Any], values: tuple[Any, ...], common: dict[str, Any]
    ) -> builder.Element:
        ident = str(e.id)
        common = {k: v for k, v in common.items() if k != "fingerprint_labels"}  # "0"/"1"
        if not (e.distinct and e.sorted):
            raise ValueError(
                f"a manyof in anchor form must be distinct and sorted, but {ident or '<root>'} "
                f"has distinct={e.distinct}, sorted={e.sorted}"
            )
        for t, sub in enumerate(e.subchoice(0).candidates):
            if sub.decision_points:
                raise ValueError(
                    f"candidates of a manyof in anchor form must be constants, but candidate "
                    f"{t} of {ident or '<root>'} holds placeholders"
                )
        group = len(self.rows)
        decisions = []
        for j, value in enumerate(values):
            name = f"{e.name}[{j}]" if e.name else readable_name(f"{ident}.anchor[{j}]")
            decisions.append(
                self.new(
                    id=f"{ident}.anchor[{j}]",
                    name=name,
                    kind=SUBSET,
                    vocab_size=2,
                    values=(False, True),
                    labels=("0", "1"),
                    group=group,
                    group_index=j,
                    group_size=len(candidates),
                    required=e.num_choices,
                    distinct=True,
                    sorted=True,
                    anchor=e.hints.get("anchor"),
                    source=value,
                    **common,
                )
            )
        constants = [
            builder.SpaceTemplate(
                builder.UnavailableNode() if c is SPEC_ONLY else builder.compile_constant(c), []
            )
            for c in candidates
        ]
        return builder.BinaryElement(decisions, constants)


def link_space(template: builder.SpaceTemplate, cont: int, nxt: list[list[int]]) -> int:
    """Fills ``nxt`` for a space whose successor is ``cont``; returns its first decision."""
    for element in reversed(template.elements):
        cont = link_element(element, cont, nxt)
    return cont


def link_element(element: builder.Element, cont: int, nxt: list[list[int]]) -> int:
    if isinstance(element, builder.ChoiceElement):
        d = element.decision
        nxt[d] = [link_space(c, cont, nxt) for c in element.candidates]
        return d
    if isinstance(element, builder.PicksElement):
        for d, candidates in zip(reversed(element.decisions), reversed(element.picks)):
            nxt[d] = [link_space(c, cont, nxt) for c in candidates]
            cont = d
        return cont
    if isinstance(element, builder.BinaryElement):
        for d in reversed(element.decisions):
            nxt[d] = [cont, cont]
            cont = d
        return cont
    assert isinstance(element, builder.FloatElement)
    nxt[element.decision] = [cont] * len(element.bins)
    return element.decision
