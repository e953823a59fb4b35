"""The DNA encoder: any search space as token sequences.

:func:`encode` compiles a space once: its PyGlove ``DNASpec`` becomes a list of
:class:`Decision` objects and flat tables (numpy arrays, mirrored as Python
lists for the per-token loops), so that walking, validating, sampling and
materialising token sequences never touches a PyGlove object. A ``pg.DNA`` is
built only when someone asks for one (:meth:`Codec.from_tokens`).

Token order is the order ``pg.DNA.from_fn`` visits decisions (a ``manyof``
pick, then that pick's subtree, then the next pick), so sequences have
variable length in conditional spaces.
"""

from __future__ import annotations

import dataclasses
import math
import random as _random
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pyglove as pg

from symbolic_nas import builder
from symbolic_nas.annotate import Annotated
from symbolic_nas.symbolic import Call, _symbolic_argument

__all__ = ["CATEGORICAL", "FLOAT", "SUBSET", "Codec", "Decision", "Step", "encode"]

CATEGORICAL = "categorical"
SUBSET = "subset"
FLOAT = "float"

DEFAULT_FLOAT_BINS = 10

_SPEC_ONLY = object()  # the "value" of a space known only by its DNASpec

# Mask rules of a decision (how earlier tokens of its group restrict it).
_FREE, _PICK, _EXACT = 0, 1, 2


@dataclasses.dataclass(frozen=True)
class Decision:
    """One decision point of a space.

    Attributes:
        index: Position in :attr:`Codec.decisions` (PyGlove's depth-first order,
            inactive branches included).
        id: PyGlove's decision id (``"[=1/2].blocks[1].kernel"``); members of an
            anchor-form ``manyof`` get ``"<id>.anchor[j]"``.
        name: A readable unique name: the placeholder's ``name``, else ``id``
            (``"<root>"`` for a placeholder at the root).
        kind: ``"categorical"``, ``"subset"`` (one binary membership token of a
            subset/anchor decision) or ``"float"`` (discretised into bins).
        vocab_size: Number of tokens.
        values: The value each token stands for (candidate literals, bin values,
            ``(False, True)`` for subset members); a candidate that is not a plain
            literal is given by its label.
        labels: A short unique string per token.
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
    """

    index: int
    id: str
    name: str
    kind: str
    vocab_size: int
    values: tuple
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


def _is_literal(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _label(value: Any) -> str:
    if isinstance(value, Call):
        return getattr(value.fn, "__name__", "call")
    if isinstance(value, Annotated):
        return f"annotate({type(value.model).__name__})"
    if _is_literal(value):
        return str(value)
    text = pg.format(value, compact=True)
    return text if len(text) <= 48 else type(value).__name__


def _labels(values: Sequence[Any]) -> tuple[str, ...]:
    labels = [_label(v) for v in values]
    if len(set(labels)) < len(labels):
        labels = [f"{i}:{label}" for i, label in enumerate(labels)]
    return tuple(labels)


def _float_bins(low: float, high: float, scale: str | None, bins: int) -> np.ndarray:
    if scale == "log":
        return np.geomspace(low, high, bins)
    if scale == "rlog":
        return (low + high - np.geomspace(low, high, bins))[::-1]
    return np.linspace(low, high, bins)


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


class _Compiler:
    """One pass over the DNASpec and the value: decisions plus the build template."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.groups: dict[int, int] = {}  # id(Subset) -> index of its first member

    def new(self, **fields: Any) -> int:
        index = len(self.rows)
        self.rows.append(dict(fields, index=index))
        return index

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
        if value is _SPEC_ONLY:
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
        name = e.name or ident or "<root>"
        if isinstance(e, pg.geno.Float):
            bins = e.hints.get("bins", DEFAULT_FLOAT_BINS) if isinstance(e.hints, dict) else None
            values = _float_bins(e.min_value, e.max_value, e.scale, bins or DEFAULT_FLOAT_BINS)
            d = self.new(
                id=ident,
                name=name,
                kind=FLOAT,
                vocab_size=len(values),
                values=tuple(float(v) for v in values),
                labels=tuple(f"{v:.6g}" for v in values),
                low=e.min_value,
                high=e.max_value,
                scale=e.scale,
                **common,
            )
            return builder.FloatElement(d, values)
        if not isinstance(e, pg.geno.Choices):
            raise TypeError(
                f"unsupported placeholder at {ident or '<root>'}: {type(e).__name__}; "
                "symbolic_nas supports oneof, manyof, permutate, floatv, intv and subset"
            )
        if info.hyper is None:  # a codec made from a DNASpec alone
            literals = list(e.literal_values)
            candidates = [_SPEC_ONLY] * len(literals)
            is_oneof = e.num_choices == 1
        else:
            literals = candidates = list(info.hyper.candidates)
            is_oneof = isinstance(info.hyper, pg.hyper.OneOf)
        labels = _labels(literals)
        values = tuple(v if _is_literal(v) else label for v, label in zip(literals, labels))
        if isinstance(e.hints, dict) and "anchor" in e.hints and not is_oneof:
            return self.binary(e, candidates, values, common)
        if is_oneof:
            extra: dict[str, Any] = dict(kind=CATEGORICAL)
            if info.subset is not None:
                j, size, owner = info.subset
                group = self.groups.setdefault(id(owner), len(self.rows))
                hints = owner.hints if isinstance(owner.hints, dict) else {}
                extra = dict(
                    kind=SUBSET,
                    group=group,
                    group_index=j,
                    group_size=size,
                    anchor=hints.get("anchor"),
                    source=e.hints.get("source"),
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
                name=f"{name}[{j}]" if e.name else str(sub.id),
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
        self, e: Any, candidates: list[Any], values: tuple, common: dict[str, Any]
    ) -> builder.Element:
        ident = str(e.id)
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
            name = f"{e.name}[{j}]" if e.name else f"{ident}.anchor[{j}]"
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
                builder.UnavailableNode() if c is _SPEC_ONLY else builder.compile_constant(c), []
            )
            for c in candidates
        ]
        return builder.BinaryElement(decisions, constants)


def _link_space(template: builder.SpaceTemplate, cont: int, nxt: list[list[int]]) -> int:
    """Fills ``nxt`` for a space whose successor is ``cont``; returns its first decision."""
    for element in reversed(template.elements):
        cont = _link_element(element, cont, nxt)
    return cont


def _link_element(element: builder.Element, cont: int, nxt: list[list[int]]) -> int:
    if isinstance(element, builder.ChoiceElement):
        d = element.decision
        nxt[d] = [_link_space(c, cont, nxt) for c in element.candidates]
        return d
    if isinstance(element, builder.PicksElement):
        for d, candidates in zip(reversed(element.decisions), reversed(element.picks)):
            nxt[d] = [_link_space(c, cont, nxt) for c in candidates]
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


def encode(space: Any) -> Codec:
    """Compiles a search space into a :class:`Codec`.

    Args:
        space: A symbolic value with placeholders (a symbolized module call, a
            ``oneof`` of them, a ``pg.Dict``/list/dict of placeholders) or a value
            made by ``sn.annotate``.

    Returns:
        The space's codec.

    Example:
        >>> import random, symbolic_nas as sn
        >>> codec = sn.encode({"kernel": sn.oneof([3, 5]), "width": sn.intv(1, 4)})
        >>> [d.name for d in codec.decisions]
        ['kernel', 'width']
        >>> tokens = codec.random_tokens(random.Random(0))
        >>> codec.to_tokens(codec.from_tokens(tokens)) == tokens
        True
    """
    return Codec(space)


class Codec:
    """The compiled encoder of one space: tokens <-> DNA <-> objects.

    Use :func:`encode` to make one. Tables (numpy, read-only): ``vocab_sizes``,
    ``next_table`` (decision x token -> next decision, ``num_decisions`` meaning
    the end, -1 for tokens outside the vocabulary), ``parents``,
    ``parent_values`` (-1 for none), ``depths`` and ``start``.
    """

    def __init__(self, space: Any, *, spec: pg.geno.Space | None = None):
        if space is _SPEC_ONLY:
            self.space = None
            self.spec = spec
        else:
            self.space = to_space(space)
            self.spec = pg.dna_spec(self.space)
            if spec is not None:
                if not pg.eq(spec, self.spec):
                    raise ValueError("`spec` must be the DNASpec of `space`, but it is another's")
                self.spec = spec
        compiler = _Compiler()
        value = _SPEC_ONLY if self.space is None else self.space
        self._template = compiler.space(self.spec, value, None, None, 0)
        rows = compiler.rows
        if not rows:
            raise ValueError(
                "`space` must hold at least one placeholder, but got a space with no decisions: "
                f"{pg.format(self.space, compact=True)[:200]}"
            )
        self.decisions: tuple[Decision, ...] = tuple(Decision(**row) for row in rows)
        n = len(rows)
        nxt: list[list[int]] = [[] for _ in range(n)]
        self.start = _link_space(self._template, n, nxt)
        self._nxt = nxt
        self._vocab = [d.vocab_size for d in self.decisions]
        self._rule = [self._rule_of(d) for d in self.decisions]
        self._full_masks = [np.ones(v, dtype=bool) for v in self._vocab]
        for m in self._full_masks:
            m.flags.writeable = False
        width = max(self._vocab)
        table = np.full((n, width), -1, dtype=np.int64)
        for d, row in enumerate(nxt):
            table[d, : len(row)] = row
        self.next_table = table
        self.vocab_sizes = np.asarray(self._vocab, dtype=np.int64)
        self.parents = np.asarray([-1 if d.parent is None else d.parent for d in self.decisions])
        self.parent_values = np.asarray(
            [-1 if d.parent_value is None else d.parent_value for d in self.decisions]
        )
        self.depths = np.asarray([d.depth for d in self.decisions])
        for array in (
            self.next_table,
            self.vocab_sizes,
            self.parents,
            self.parent_values,
            self.depths,
        ):
            array.flags.writeable = False
        self._float_values = [list(d.values) if d.kind == FLOAT else None for d in self.decisions]

    @classmethod
    def from_spec(cls, spec: pg.geno.Space) -> Codec:
        """A codec from a DNASpec alone: tokens and DNA, but no ``materialize``.

        Subset members are then plain binary categorical decisions.
        """
        if not isinstance(spec, pg.geno.Space):
            raise TypeError(
                f"`spec` must be a pg.geno.Space (pg.dna_spec(space)), but got {spec!r}"
            )
        return cls(_SPEC_ONLY, spec=spec)

    @staticmethod
    def _rule_of(d: Decision) -> int:
        if d.required is not None:
            return _EXACT
        if d.group is not None and d.kind == CATEGORICAL and (d.distinct or d.sorted):
            return _PICK
        return _FREE

    # ------------------------------------------------------------------ basics

    @property
    def num_decisions(self) -> int:
        """Number of decisions, inactive branches included."""
        return len(self.decisions)

    @property
    def space_size(self) -> int | None:
        """Number of distinct DNA of the space, or None when it holds a float."""
        size = self.spec.space_size
        return None if size < 0 else int(size)

    @property
    def max_length(self) -> int:
        """The longest possible token sequence (an upper bound: all branches' maximum)."""
        return self._longest(self.start)

    def _longest(self, d: int) -> int:
        best = 0
        stack = [(d, 0)]
        seen: dict[tuple[int, int], None] = {}
        while stack:
            node, length = stack.pop()
            if node == len(self.decisions):
                best = max(best, length)
                continue
            for nxt in set(self._nxt[node]):
                if (nxt, length + 1) not in seen:
                    seen[(nxt, length + 1)] = None
                    stack.append((nxt, length + 1))
        return best

    def __repr__(self) -> str:
        return f"Codec(num_decisions={self.num_decisions}, space_size={self.space_size})"

    # ------------------------------------------------------------------ masks

    def _valid(self, d: int, groups: dict[int, list[int]]) -> range | list[int]:
        """Valid tokens at decision ``d`` given the tokens chosen so far in each group."""
        rule = self._rule[d]
        vocab = self._vocab[d]
        if rule == _FREE:
            return range(vocab)
        dec = self.decisions[d]
        prev = groups.get(dec.group, ())
        if rule == _EXACT:
            need = dec.required - sum(prev)
            remain = dec.group_size - dec.group_index
            return [t for t, ok in ((0, need < remain), (1, need > 0)) if ok]
        if dec.sorted:
            low = (prev[-1] + 1 if dec.distinct else prev[-1]) if prev else 0
            high = vocab - (dec.group_size - dec.group_index) if dec.distinct else vocab - 1
            return range(low, high + 1)
        return [t for t in range(vocab) if t not in prev]

    def _mask(self, d: int, groups: dict[int, list[int]]) -> np.ndarray:
        if self._rule[d] == _FREE:
            return self._full_masks[d]
        mask = np.zeros(self._vocab[d], dtype=bool)
        mask[list(self._valid(d, groups))] = True
        return mask

    # ------------------------------------------------------------------ walking

    def walker(self) -> Walker:
        """A cursor that walks the space token by token (for controllers).

        Example:
            >>> import symbolic_nas as sn
            >>> codec = sn.encode({"a": sn.oneof([1, 2]), "b": sn.oneof([3, 4, 5])})
            >>> w = codec.walker()
            >>> while not w.done:
            ...     w.push(w.valid_tokens()[-1])
            >>> w.tokens
            [1, 2]
        """
        return Walker(self)

    def next_decision(self, prefix: Sequence[int]) -> Step | None:
        """The decision after ``prefix`` and its valid tokens, or None at the end.

        Raises:
            ValueError: ``prefix`` is not a valid prefix of this space.
        """
        walker = Walker(self)
        for token in prefix:
            if walker.done:
                raise ValueError(
                    f"token sequence too long: the space ends after {walker.position} tokens, "
                    f"but got {len(prefix)}"
                )
            walker.push(token)
        if walker.done:
            return None
        return Step(self.decisions[walker.decision], walker.mask())

    def trace(self, tokens: Sequence[int]) -> list[int]:
        """Validates ``tokens`` and returns the decision index of each token.

        Raises:
            ValueError: a token is out of its vocabulary or breaks a constraint,
                or the sequence is too short or too long.
        """
        end = len(self._vocab)
        nxt, rule = self._nxt, self._rule
        d = self.start
        out: list[int] = []
        groups: dict[int, list[int]] = {}
        for i, token in enumerate(tokens):
            if d == end:
                raise ValueError(
                    f"token sequence too long: the space ends after {i} tokens, "
                    f"but got {len(tokens)}"
                )
            if not isinstance(token, (int, np.integer)) or isinstance(token, bool):
                raise ValueError(f"token at position {i} must be an int, but got {token!r}")
            row = nxt[d]
            if not 0 <= token < len(row):
                dec = self.decisions[d]
                raise ValueError(
                    f"token at position {i} must be in [0, {len(row)}) for decision "
                    f"{dec.name!r}, but got {token}"
                )
            if rule[d] != _FREE:
                token = int(token)
                if token not in self._valid(d, groups):
                    dec = self.decisions[d]
                    raise ValueError(
                        f"token at position {i} must be one of {list(self._valid(d, groups))} "
                        f"for decision {dec.name!r} ({self._rule_text(dec)}), but got {token}"
                    )
                groups.setdefault(self.decisions[d].group, []).append(token)
            out.append(d)
            d = row[token]
        if d != end:
            raise ValueError(
                f"token sequence too short: got {len(tokens)} tokens, but decision "
                f"{self.decisions[d].name!r} comes next"
            )
        return out

    @staticmethod
    def _rule_text(d: Decision) -> str:
        if d.required is not None:
            return f"exactly {d.required} of {d.group_size} members are chosen"
        parts = [p for p, on in (("distinct", d.distinct), ("sorted", d.sorted)) if on]
        return " and ".join(parts) + " picks"

    def validate(self, tokens: Sequence[int]) -> None:
        """Raises ``ValueError`` with the position, value and rule if ``tokens`` is invalid."""
        self.trace(tokens)

    def is_valid(self, tokens: Sequence[int]) -> bool:
        """Whether ``tokens`` is a complete, valid token sequence of this space."""
        try:
            self.trace(tokens)
        except ValueError:
            return False
        return True

    def random_tokens(self, rng: _random.Random | int | None = None) -> list[int]:
        """A uniformly random valid token sequence (uniform at each step).

        Args:
            rng: A ``random.Random`` (or an int seed, or None for a fresh one).
        """
        if not isinstance(rng, _random.Random):
            rng = _random.Random(rng)
        end = len(self._vocab)
        nxt, rule, vocab = self._nxt, self._rule, self._vocab
        d = self.start
        tokens: list[int] = []
        groups: dict[int, list[int]] | None = None
        randrange = rng.randrange
        while d != end:
            if rule[d] == _FREE:
                token = randrange(vocab[d])
            else:
                if groups is None:
                    groups = {}
                valid = self._valid(d, groups)
                token = valid[randrange(len(valid))]
                groups.setdefault(self.decisions[d].group, []).append(token)
            tokens.append(token)
            d = nxt[d][token]
        return tokens

    # ------------------------------------------------------------------ values

    def decode(self, tokens: Sequence[int]) -> dict[str, Any]:
        """The value of every active decision, by decision name.

        Example:
            >>> import symbolic_nas as sn
            >>> sn.encode({"k": sn.oneof([3, 5])}).decode([1])
            {'k': 5}
        """
        decisions = self.decisions
        return {
            decisions[d].name: decisions[d].values[t] for d, t in zip(self.trace(tokens), tokens)
        }

    def labels(self, tokens: Sequence[int]) -> dict[str, str]:
        """The label of every active decision's token, by decision name."""
        decisions = self.decisions
        return {
            decisions[d].name: decisions[d].labels[t] for d, t in zip(self.trace(tokens), tokens)
        }

    def materialize(self, tokens: Sequence[int]) -> Any:
        """Builds the concrete object (a fresh ``nn.Module`` for module spaces).

        Example:
            >>> import symbolic_nas as sn
            >>> sn.encode({"k": sn.oneof([3, 5])}).materialize([0])
            {'k': 3}
        """
        self.trace(tokens)
        return self._template.build(iter(int(t) for t in tokens))

    # ------------------------------------------------------------------ DNA

    def from_tokens(self, tokens: Sequence[int]) -> pg.DNA:
        """The ``pg.DNA`` (bound to this space's spec) for a token sequence.

        This builds PyGlove objects (milliseconds): keep it off hot paths.
        """
        self.trace(tokens)
        dna = pg.DNA(self._template.compact(iter(int(t) for t in tokens)))
        return dna.use_spec(self.spec)

    def to_tokens(self, dna: pg.DNA) -> list[int]:
        """The token sequence of a ``pg.DNA`` of this space.

        Floats are mapped to their nearest bin (on the float's scale).

        Raises:
            ValueError: ``dna`` belongs to another space.
        """
        if not isinstance(dna, pg.DNA):
            raise TypeError(f"`dna` must be a pg.DNA, but got {dna!r}")
        if dna.spec is not None and not self._owns(dna.spec):
            raise ValueError(
                "`dna` must belong to this space, but it is bound to another space's spec"
            )
        numbers = dna.to_numbers()
        tokens: list[int] = []
        end = len(self._vocab)
        d, i = self.start, 0
        try:
            while d != end:
                dec = self.decisions[d]
                if dec.kind == FLOAT:
                    token = self._nearest_bin(dec, float(numbers[i]))
                    i += 1
                elif dec.required is not None:
                    if dec.group_index == 0:
                        chosen = set(numbers[i : i + dec.required])
                        i += dec.required
                        pending = [int(j in chosen) for j in range(dec.group_size)]
                    token = pending[dec.group_index]
                else:
                    token = numbers[i]
                    i += 1
                    if isinstance(token, float) or not 0 <= token < dec.vocab_size:
                        raise ValueError(f"value {token!r} at decision {dec.name!r}")
                tokens.append(int(token))
                d = self._nxt[d][token]
            if i != len(numbers):
                raise ValueError(f"{len(numbers) - i} values left over")
            self.trace(tokens)
        except (ValueError, IndexError, TypeError) as e:
            raise ValueError(
                f"`dna` must belong to this space, but {dna} does not fit it: {e}"
            ) from None
        return tokens

    def _owns(self, spec: Any) -> bool:
        """Whether a DNA bound to ``spec`` belongs to this space (a one-element space's
        DNA is bound to that element)."""
        candidates = [self.spec]
        if len(self.spec.elements) == 1:
            candidates.append(self.spec.elements[0])
        if any(spec is c for c in candidates):
            return True
        return any(pg.eq(spec, c) for c in candidates)

    @staticmethod
    def _nearest_bin(dec: Decision, value: float) -> int:
        values = np.asarray(dec.values)
        if dec.scale == "log":
            distance = np.abs(np.log(values) - math.log(max(value, 1e-300)))
        else:
            distance = np.abs(values - value)
        return int(np.argmin(distance))


class Walker:
    """Walks a :class:`Codec`'s space token by token; see :meth:`Codec.walker`."""

    __slots__ = ("_codec", "_groups", "decision", "position", "tokens")

    def __init__(self, codec: Codec):
        self._codec = codec
        self._groups: dict[int, list[int]] = {}
        self.decision = codec.start
        self.position = 0
        self.tokens: list[int] = []

    @property
    def done(self) -> bool:
        """Whether the sequence is complete."""
        return self.decision == len(self._codec.decisions)

    @property
    def current(self) -> Decision:
        """The decision to be made next."""
        if self.done:
            raise ValueError("the token sequence is complete: there is no next decision")
        return self._codec.decisions[self.decision]

    def mask(self) -> np.ndarray:
        """Boolean mask of the valid tokens at the current decision."""
        return self._codec._mask(self.current.index, self._groups)

    def valid_tokens(self) -> list[int]:
        """The valid tokens at the current decision."""
        return list(self._codec._valid(self.current.index, self._groups))

    def push(self, token: int) -> None:
        """Takes ``token`` for the current decision and moves to the next one."""
        codec = self._codec
        dec = self.current
        if isinstance(token, bool) or not isinstance(token, (int, np.integer)):
            raise ValueError(f"token at position {self.position} must be an int, but got {token!r}")
        token = int(token)
        valid = codec._valid(dec.index, self._groups)
        if token not in valid:
            raise ValueError(
                f"token at position {self.position} must be one of {list(valid)} for decision "
                f"{dec.name!r}, but got {token}"
            )
        if codec._rule[dec.index] != _FREE:
            self._groups.setdefault(dec.group, []).append(token)
        self.tokens.append(token)
        self.position += 1
        self.decision = codec._nxt[dec.index][token]
