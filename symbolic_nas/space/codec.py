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

import math
import random as _random
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyglove as pg

from symbolic_nas.space.builder import TokenStream
from symbolic_nas.space.compiler import SPEC_ONLY, Compiler, link_space, to_space
from symbolic_nas.space.decisions import (
    CATEGORICAL,
    DEFAULT_FLOAT_BINS,
    FLOAT,
    SUBSET,
    Decision,
    MaskRule,
    Step,
    float_label,
)
from symbolic_nas.space.floats import check_floats, random_float
from symbolic_nas.space.walker import Walker, nearest_bin, numbers_to_tokens
from symbolic_nas.validation import InvalidParameterError

__all__ = [
    "CATEGORICAL",
    "DEFAULT_FLOAT_BINS",
    "FLOAT",
    "SUBSET",
    "Codec",
    "Decision",
    "Step",
    "Walker",
    "encode",
    "to_space",
]

# Module-level names for the per-token loops (a global lookup, not an enum attribute).
_FREE, _EXACT = MaskRule.FREE, MaskRule.EXACT


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
        self.spec: pg.geno.Space
        if space is SPEC_ONLY:
            if spec is None:
                raise TypeError("`spec` must be given for a codec without a space")
            self.space = None
            self.spec = spec
        else:
            self.space = to_space(space)
            self.spec = pg.dna_spec(self.space)
            if spec is not None:
                if not pg.eq(spec, self.spec):
                    raise ValueError("`spec` must be the DNASpec of `space`, but it is another's")
                self.spec = spec
        compiler = Compiler()
        value = SPEC_ONLY if self.space is None else self.space
        self._template = compiler.space(self.spec, value, None, None, 0)
        rows = compiler.unique_names()
        if not rows:
            raise ValueError(
                "`space` must hold at least one placeholder, but got a space with no decisions: "
                f"{pg.format(self.space, compact=True)[:200]}"
            )
        self.decisions: tuple[Decision, ...] = tuple(Decision(**row) for row in rows)
        n = len(rows)
        nxt: list[list[int]] = [[] for _ in range(n)]
        self.start = link_space(self._template, n, nxt)
        self._nxt = nxt
        self._vocab = [d.vocab_size for d in self.decisions]
        self._rule = [d.mask_rule for d in self.decisions]
        self._full_masks = [np.ones(v, dtype=bool) for v in self._vocab]
        for m in self._full_masks:
            m.flags.writeable = False
        # Group of each decision (-1: none) and, for exact-k members, k (the mask rules'
        # inputs, flat for the per-token loops).
        self._group = [-1 if d.group is None else d.group for d in self.decisions]
        self._required = [d.required or 0 for d in self.decisions]
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
        self.has_floats = any(d.kind == FLOAT for d in self.decisions)

    @classmethod
    def from_spec(cls, spec: pg.geno.Space) -> Codec:
        """A codec from a DNASpec alone: tokens and DNA, but no ``materialize``.

        Subset members are then plain binary categorical decisions.
        """
        if not isinstance(spec, pg.geno.Space):
            raise TypeError(
                f"`spec` must be a pg.geno.Space (pg.dna_spec(space)), but got {spec!r}"
            )
        return cls(SPEC_ONLY, spec=spec)

    # ------------------------------------------------------------------ basics

    @property
    def num_decisions(self) -> int:
        """Number of decisions, inactive branches included."""
        return len(self.decisions)

    @property
    def space_size(self) -> int | float:
        """Number of distinct DNA of the space, or ``math.inf`` when it holds a float.

        Example:
            >>> import symbolic_nas as sn
            >>> sn.encode({"k": sn.oneof([3, 5]), "n": sn.intv(1, 4)}).space_size
            8
            >>> sn.encode({"lr": sn.floatv(1e-4, 1e-1, scale="log")}).space_size
            inf
        """
        size = self.spec.space_size
        return math.inf if size < 0 else int(size)

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
        prev = groups.get(self._group[d], ())
        if rule == _EXACT:
            need = self._required[d] - sum(prev)
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
        if isinstance(tokens, (str, bytes)) or not hasattr(tokens, "__len__"):
            raise InvalidParameterError(f"`tokens` must be a sequence of ints, but got {tokens!r}")
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
                groups.setdefault(self._group[d], []).append(token)
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
        """A uniformly random valid token sequence, drawn as PyGlove's ``random_dna``.

        Each decision is uniform over its vocabulary, and each ``manyof`` is drawn
        as a whole: distinct picks are a uniform sample of distinct candidates
        (sorted when the placeholder sorts them, so every subset is equally
        likely), other picks independent draws (then sorted when asked), an anchor
        group a uniform ``k``-subset of its members.

        Args:
            rng: A ``random.Random`` (or an int seed, or None for a fresh one).
        """
        if not isinstance(rng, _random.Random):
            rng = _random.Random(rng)
        end = len(self._vocab)
        nxt, rule, vocab = self._nxt, self._rule, self._vocab
        d = self.start
        tokens: list[int] = []
        randrange = rng.randrange
        while d != end:
            if rule[d] == _FREE:
                token = randrange(vocab[d])
            else:
                dec = self.decisions[d]
                if dec.group_index == 0:
                    group = self._random_group(dec, rng)
                token = group[dec.group_index]
            tokens.append(token)
            d = nxt[d][token]
        return tokens

    @staticmethod
    def _random_group(dec: Decision, rng: _random.Random) -> list[int]:
        """The tokens of a whole constrained group, drawn at its first member ``dec``."""
        if dec.required is not None:  # anchor form: a uniform k-subset of the members
            chosen = set(rng.sample(range(dec.group_size), dec.required))
            return [int(j in chosen) for j in range(dec.group_size)]
        if dec.distinct:
            picks = rng.sample(range(dec.vocab_size), dec.group_size)
        else:
            picks = [rng.randrange(dec.vocab_size) for _ in range(dec.group_size)]
        return sorted(picks) if dec.sorted else picks

    def random_sample(
        self, rng: _random.Random | int | None = None
    ) -> tuple[list[int], dict[int, float]]:
        """:meth:`random_tokens` and an exact value for each active float decision, drawn
        uniformly on its scale, whose token is then its nearest bin (see
        :mod:`symbolic_nas.space.floats`); ``(random_tokens(rng), {})`` without floats."""
        if not isinstance(rng, _random.Random):
            rng = _random.Random(rng)
        tokens = self.random_tokens(rng)
        if not self.has_floats:
            return tokens, {}
        floats: dict[int, float] = {}
        for position, d in enumerate(self.trace(tokens)):
            dec = self.decisions[d]
            if dec.kind == FLOAT:  # a float's token never changes what comes next
                floats[d] = random_float(dec, rng)
                tokens[position] = nearest_bin(dec, floats[d])
        return tokens, floats

    # ------------------------------------------------------------------ values

    def _stream(self, tokens: Sequence[int], floats: Any) -> Any:
        """Validates ``tokens`` (and ``floats``) and returns what the template builds from."""
        trace = self.trace(tokens)
        if floats:
            return TokenStream(tokens, check_floats(self, trace, tokens, floats))
        return iter(int(t) for t in tokens)

    def decode(
        self, tokens: Sequence[int], floats: dict[int, float] | None = None
    ) -> dict[str, Any]:
        """The value of every active decision, by decision name (a float's exact value
        where ``floats`` has one, see :mod:`symbolic_nas.space.floats`).

        Example:
            >>> import symbolic_nas as sn
            >>> sn.encode({"k": sn.oneof([3, 5])}).decode([1])
            {'k': 5}
        """
        decisions = self.decisions
        trace = self.trace(tokens)
        exact = check_floats(self, trace, tokens, floats) if floats else {}
        return {
            decisions[d].name: exact[d] if d in exact else decisions[d].values[t]
            for d, t in zip(trace, tokens)
        }

    def labels(
        self, tokens: Sequence[int], floats: dict[int, float] | None = None
    ) -> dict[str, str]:
        """The label of every active decision's token, by decision name (an exact float
        value in ``floats`` is shown as itself, to six significant digits)."""
        decisions = self.decisions
        trace = self.trace(tokens)
        exact = check_floats(self, trace, tokens, floats) if floats else {}
        return {
            decisions[d].name: float_label(exact[d]) if d in exact else decisions[d].labels[t]
            for d, t in zip(trace, tokens)
        }

    def materialize(self, tokens: Sequence[int], floats: dict[int, float] | None = None) -> Any:
        """Builds the concrete object (a fresh ``nn.Module`` for module spaces), with the
        exact values of float decisions in ``floats`` (a trial's), the bins' elsewhere.

        Example:
            >>> import symbolic_nas as sn
            >>> sn.encode({"k": sn.oneof([3, 5])}).materialize([0])
            {'k': 3}
            >>> sn.encode({"p": sn.floatv(0.0, 1.0)}).materialize([3], {0: 0.3})
            {'p': 0.3}
        """
        return self._template.build(self._stream(tokens, floats))

    # ------------------------------------------------------------------ DNA

    def from_tokens(self, tokens: Sequence[int], floats: dict[int, float] | None = None) -> pg.DNA:
        """The ``pg.DNA`` (bound to this space's spec) for a token sequence (with the
        exact values of float decisions in ``floats``, the bins' values elsewhere).

        This builds PyGlove objects (milliseconds): keep it off hot paths.
        """
        dna = pg.DNA(self._template.compact(self._stream(tokens, floats)))
        return dna.use_spec(self.spec)

    def to_tokens(self, dna: pg.DNA) -> list[int]:
        """The token sequence of a ``pg.DNA`` of this space.

        Floats are mapped to their nearest bin (on the float's scale); their exact
        values are :meth:`to_tokens_and_floats`'.

        Raises:
            ValueError: ``dna`` belongs to another space.
        """
        return self.to_tokens_and_floats(dna)[0]

    def to_tokens_and_floats(self, dna: pg.DNA) -> tuple[list[int], dict[int, float]]:
        """The tokens of a ``pg.DNA`` of this space and the exact values of its floats
        that are not their bin's value (by decision index).

        Example:
            >>> import symbolic_nas as sn
            >>> codec = sn.encode({"p": sn.floatv(0.0, 1.0, hints={"bins": 3})})
            >>> codec.to_tokens_and_floats(codec.from_tokens([2], {0: 0.9}))
            ([2], {0: 0.9})

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
        floats: dict[int, float] = {}
        try:
            tokens = numbers_to_tokens(self, numbers, floats)
            self.trace(tokens)
        except (ValueError, IndexError, TypeError) as e:
            raise ValueError(
                f"`dna` must belong to this space, but {dna} does not fit it: {e}"
            ) from None
        return tokens, floats

    def _owns(self, spec: Any) -> bool:
        """Whether a DNA bound to ``spec`` belongs to this space (a one-element space's
        DNA is bound to that element)."""
        candidates = [self.spec]
        if len(self.spec.elements) == 1:
            candidates.append(self.spec.elements[0])
        if any(spec is c for c in candidates):
            return True
        return any(pg.eq(spec, c) for c in candidates)
