"""Compiled templates that build plain objects straight from tokens.

A space is compiled once (by :class:`symbolic_nas.space.codec.Codec`) into a tree of
small nodes. Building walks that tree with the token sequence: each ``Call``
calls the user's own class or function with resolved arguments, constant
modules written inside the space are rebuilt from their constructor arguments
(or deep-copied when no symbolized callable built them), so every
materialisation is a fresh, ordinary PyTorch object and no PyGlove object is
touched on this path.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pyglove as pg
import torch
from torch import nn

from symbolic_nas.space.annotate import Annotated
from symbolic_nas.space.meta import deepcopy_for_build
from symbolic_nas.space.placeholders import Subset
from symbolic_nas.space.symbolic import Call, TupleValue, _signature, provenance

__all__ = ["Node", "SpaceTemplate", "TokenStream", "compile_value"]


class Node:
    """A compiled piece of a space; ``build`` gets the values of its space's elements."""

    __slots__ = ()

    def build(self, values: Sequence[Any]) -> Any:
        raise NotImplementedError


class ConstNode(Node):
    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def build(self, values: Sequence[Any]) -> Any:
        return self.value


class UnavailableNode(Node):
    """Stands for a value that a codec made from a DNASpec alone does not know."""

    __slots__ = ()

    def build(self, values: Sequence[Any]) -> Any:
        raise ValueError(
            "this codec was made from a DNASpec alone (Codec.from_spec); materializing "
            "needs the space itself: use sn.encode(space)"
        )


class CopyNode(Node):
    """A module or tensor that no symbolized callable built: deep-copied per build."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def build(self, values: Sequence[Any]) -> Any:
        return deepcopy_for_build(self.value)


class SlotNode(Node):
    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index

    def build(self, values: Sequence[Any]) -> Any:
        return values[self.index]


class ListNode(Node):
    __slots__ = ("items", "kind")

    def __init__(self, items: list[Node], kind: type = list):
        self.items = items
        self.kind = kind

    def build(self, values: Sequence[Any]) -> Any:
        return self.kind(item.build(values) for item in self.items)


class DictNode(Node):
    __slots__ = ("items", "keys")

    def __init__(self, keys: list[Any], items: list[Node]):
        self.keys = keys
        self.items = items

    def build(self, values: Sequence[Any]) -> Any:
        return {k: item.build(values) for k, item in zip(self.keys, self.items)}


class CallNode(Node):
    """Calls a symbolized class or function with its built arguments."""

    __slots__ = ("fn", "items", "names", "signature")

    def __init__(self, fn: Callable[..., Any], names: list[str], items: list[Node]):
        self.fn = fn
        self.names = names
        self.items = items
        self.signature = _signature(getattr(fn, "__sn_target__", fn))

    def build(self, values: Sequence[Any]) -> Any:
        arguments = {}
        for name, item in zip(self.names, self.items):
            value = item.build(values)
            if self.signature.parameters[name].kind is inspect.Parameter.VAR_POSITIONAL:
                value = tuple(value)
            arguments[name] = value
        bound = inspect.BoundArguments(self.signature, arguments)
        return self.fn(*bound.args, **bound.kwargs)


class ObjectNode(Node):
    """Any other PyGlove object: rebuilt from its built fields."""

    __slots__ = ("cls", "items", "names")

    def __init__(self, cls: type, names: list[str], items: list[Node]):
        self.cls = cls
        self.names = names
        self.items = items

    def build(self, values: Sequence[Any]) -> Any:
        return self.cls(**{n: item.build(values) for n, item in zip(self.names, self.items)})


class SubsetNode(Node):
    __slots__ = ("candidates", "mask")

    def __init__(self, candidates: list[Node], mask: list[Node]):
        self.candidates = candidates
        self.mask = mask

    def build(self, values: Sequence[Any]) -> Any:
        return [c.build(values) for c, m in zip(self.candidates, self.mask) if m.build(values)]


class AnnotatedNode(Node):
    __slots__ = ("annotated", "choices")

    def __init__(self, annotated: Annotated, choices: list[Node]):
        self.annotated = annotated
        self.choices = choices

    def build(self, values: Sequence[Any]) -> Any:
        return self.annotated.build([c.build(values) for c in self.choices])


# --------------------------------------------------------------------------- elements


class Element:
    """One element of a space (a decision point and its candidates' subspaces)."""

    __slots__ = ()

    def build(self, tokens: Iterator[int]) -> Any:
        raise NotImplementedError

    def compact(self, tokens: Iterator[int]) -> Any:
        """The element's part of PyGlove's compact DNA value (see ``pg.DNA``)."""
        raise NotImplementedError


class SpaceTemplate:
    """A value with slots, plus the elements that fill the slots."""

    __slots__ = ("elements", "node")

    def __init__(self, node: Node, elements: list[Element]):
        self.node = node
        self.elements = elements

    def build(self, tokens: Iterator[int]) -> Any:
        values = [e.build(tokens) for e in self.elements]
        return self.node.build(values)

    def compact(self, tokens: Iterator[int]) -> Any:
        """PyGlove's compact DNA value of this space (None when it has no elements)."""
        values = [e.compact(tokens) for e in self.elements]
        if not values:
            return None
        return values[0] if len(values) == 1 else values


class ChoiceElement(Element):
    __slots__ = ("candidates", "decision")

    def __init__(self, decision: int, candidates: list[SpaceTemplate]):
        self.decision = decision
        self.candidates = candidates

    def build(self, tokens: Iterator[int]) -> Any:
        return self.candidates[next(tokens)].build(tokens)

    def compact(self, tokens: Iterator[int]) -> Any:
        return _choice_compact(self.candidates, tokens)


class PicksElement(Element):
    """A manyof encoded as k categorical picks, each followed by its subtree."""

    __slots__ = ("decisions", "picks")

    def __init__(self, decisions: list[int], picks: list[list[SpaceTemplate]]):
        self.decisions = decisions
        self.picks = picks

    def build(self, tokens: Iterator[int]) -> Any:
        return [candidates[next(tokens)].build(tokens) for candidates in self.picks]

    def compact(self, tokens: Iterator[int]) -> Any:
        picks = [_choice_compact(candidates, tokens) for candidates in self.picks]
        return picks[0] if len(picks) == 1 else picks


class BinaryElement(Element):
    """A manyof in anchor form: one binary token per (constant) candidate."""

    __slots__ = ("candidates", "decisions")

    def __init__(self, decisions: list[int], candidates: list[SpaceTemplate]):
        self.decisions = decisions
        self.candidates = candidates

    def build(self, tokens: Iterator[int]) -> Any:
        chosen = [next(tokens) for _ in self.decisions]
        return [c.build(tokens) for c, bit in zip(self.candidates, chosen) if bit]

    def compact(self, tokens: Iterator[int]) -> Any:
        picks = [j for j in range(len(self.decisions)) if next(tokens)]
        return picks[0] if len(picks) == 1 else picks


class FloatElement(Element):
    """A float decision: its token's bin value, or the exact value when the token
    stream carries one (:class:`TokenStream`)."""

    __slots__ = ("bins", "decision")

    def __init__(self, decision: int, bins: Sequence[float]):
        self.decision = decision
        self.bins = [float(b) for b in bins]

    def build(self, tokens: Iterator[int]) -> Any:
        value = self.bins[next(tokens)]
        if isinstance(tokens, TokenStream):
            return tokens.floats.get(self.decision, value)
        return value

    compact = build


class TokenStream:
    """Tokens to build from, plus the exact values of some float decisions (by
    decision index), which :class:`FloatElement` takes instead of its bin values.

    Example:
        >>> stream = TokenStream([2], {0: 0.25})
        >>> FloatElement(0, [0.0, 0.5, 1.0]).build(stream)
        0.25
    """

    __slots__ = ("_tokens", "floats")

    def __init__(self, tokens: Sequence[int], floats: dict[int, float]):
        self._tokens = iter(int(t) for t in tokens)
        self.floats = floats

    def __iter__(self) -> TokenStream:
        return self

    def __next__(self) -> int:
        return next(self._tokens)


def _choice_compact(candidates: list[SpaceTemplate], tokens: Iterator[int]) -> Any:
    token = next(tokens)
    child = candidates[token].compact(tokens)
    if child is None:
        return token
    # PyGlove writes a chain of conditional choices as one flat tuple: (0, 1, 2).
    return (token, *child) if isinstance(child, tuple) else (token, child)


# --------------------------------------------------------------------------- compile


class SlotInfo:
    """What the value walk found at a decision point's location."""

    __slots__ = ("hyper", "subset")

    def __init__(self, hyper: Any, subset: tuple[int, int, Subset] | None = None):
        self.hyper = hyper
        self.subset = subset  # (member index, group size, the Subset) for subset members


def compile_value(
    value: Any, path: pg.KeyPath, slots: dict[str, int], found: dict[int, SlotInfo]
) -> Node:
    """Compiles ``value`` into a :class:`Node`; placeholders at ``slots`` become slots.

    Args:
        value: A (part of a) symbolic value.
        path: Its location relative to the root of its PyGlove ``Space``.
        slots: Maps the location string of each decision point to its element index.
        found: Filled with what sits at each element index.
    """
    key = str(path)
    if isinstance(value, pg.hyper.HyperValue):
        if key not in slots:
            raise TypeError(f"unsupported placeholder at {key or '<root>'}: {value!r}")
        found[slots[key]] = SlotInfo(value)
        return SlotNode(slots[key])
    if isinstance(value, Call):
        names, items = [], []
        for name, child in value.arguments().items():
            names.append(name)
            items.append(compile_value(child, pg.KeyPath(name, path), slots, found))
        return CallNode(value.fn, names, items)
    if isinstance(value, TupleValue):
        return ListNode(_compile_items(value.items, pg.KeyPath("items", path), slots, found), tuple)
    if isinstance(value, Subset):
        return _compile_subset(value, path, slots, found)
    if isinstance(value, Annotated):
        choices = _compile_items(value.choices, pg.KeyPath("choices", path), slots, found)
        return AnnotatedNode(value, choices)
    if isinstance(value, pg.List):
        return ListNode(_compile_items(value, path, slots, found))
    if isinstance(value, pg.Dict):
        keys = list(value.keys())
        items = [compile_value(value[k], pg.KeyPath(k, path), slots, found) for k in keys]
        return DictNode(keys, items)
    if isinstance(value, pg.Object):
        names, items = [], []
        for name, child in value.sym_items():
            names.append(name)
            items.append(compile_value(child, pg.KeyPath(name, path), slots, found))
        return ObjectNode(type(value), names, items)
    return compile_constant(value)


def _compile_items(
    values: Sequence[Any], path: pg.KeyPath, slots: dict[str, int], found: dict[int, SlotInfo]
) -> list[Node]:
    return [compile_value(v, pg.KeyPath(i, path), slots, found) for i, v in enumerate(values)]


def _compile_subset(
    value: Subset, path: pg.KeyPath, slots: dict[str, int], found: dict[int, SlotInfo]
) -> Node:
    candidates = _compile_items(value.candidates, pg.KeyPath("candidates", path), slots, found)
    mask = _compile_items(value.mask, pg.KeyPath("mask", path), slots, found)
    for j, node in enumerate(mask):
        if not isinstance(node, SlotNode):
            raise TypeError(f"the mask of subset at {path} must hold placeholders only")
        found[node.index].subset = (j, len(mask), value)
    return SubsetNode(candidates, mask)


def compile_constant(value: Any) -> Node:
    """Compiles a value without placeholders; modules are rebuilt or copied per build."""
    if isinstance(value, nn.Module):
        record = provenance(value)
        if record is None:
            return CopyNode(value)
        target = getattr(record.fn, "__sn_target__", record.fn)
        bound = _signature(target).bind(*record.args, **record.kwargs)
        names = list(bound.arguments)
        return CallNode(record.fn, names, [compile_constant(bound.arguments[n]) for n in names])
    if isinstance(value, torch.Tensor):
        return CopyNode(value)
    if isinstance(value, tuple):
        items = [compile_constant(v) for v in value]
        if all(isinstance(i, ConstNode) for i in items):
            return ConstNode(value)  # immutable: safe to share
        return ListNode(items, tuple)
    if isinstance(value, list):  # a fresh list per build: no trial sees another's mutations
        return ListNode([compile_constant(v) for v in value])
    if isinstance(value, dict):
        keys = list(value)
        return DictNode(keys, [compile_constant(value[k]) for k in keys])
    return ConstNode(value)
