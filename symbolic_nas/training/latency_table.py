"""A user-supplied cost table: architecture key → latency (or any per-architecture cost).

For devices a search cannot run on (a phone, an accelerator measured elsewhere),
costs come from a CSV with a header: one column holds the architecture's key,
another its cost. The key is either the token sequence (``"tokens"``: any
integers separated by non-digits, e.g. ``3 3 3 1 3 2`` or ``[3, 3, 3, 1, 3, 2]``)
or a key the space defines, a function of the tokens, such as NAS-Bench-201's
arch string (``symbolic_nas.spaces.nasbench201.tokens_to_arch_str``), which the
published latency tables of NAS-Bench-201 cells (HW-NAS-Bench, HELP) use.

Every value is checked when the table is read (a non-numeric or non-finite cost
is an error naming the line and the value); :meth:`LatencyTable.check` checks up
front that every architecture a search may propose has an entry.

Use it in a tokens evaluator::

    table = sn.LatencyTable.from_csv("pixel3.csv", key=tokens_to_arch_str)

    @sn.evaluator(input="tokens")
    def evaluate(tokens):
        return {"accuracy": ..., "latency": table(tokens)}
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from symbolic_nas.space.codec import Codec

__all__ = ["LatencyTable", "enumerate_tokens"]

KeyFunction = Callable[[Sequence[int]], str]
_MAX_ENUMERATED = 1_000_000


def _tokens_key(tokens: Sequence[int]) -> str:
    return ",".join(str(int(t)) for t in tokens)


def _normalise_tokens_key(text: str) -> str:
    return ",".join(re.findall(r"-?\d+", text))


def enumerate_tokens(codec: Codec) -> Iterator[list[int]]:
    """Every valid token sequence of a finite space, depth first.

    Example:
        >>> import symbolic_nas as sn
        >>> list(enumerate_tokens(sn.encode({"a": sn.oneof([1, 2]), "b": sn.oneof([3, 4])})))
        [[0, 0], [0, 1], [1, 0], [1, 1]]
    """
    size = codec.space_size
    if math.isinf(size) or size > _MAX_ENUMERATED:
        raise ValueError(
            f"`codec` must be a space of at most {_MAX_ENUMERATED} architectures to enumerate, "
            f"but got one of {size}"
        )
    stack: list[list[int]] = [[]]
    while stack:
        prefix = stack.pop()
        step = codec.next_decision(prefix)
        if step is None:
            yield prefix
            continue
        allowed = [int(t) for t in step.mask.nonzero()[0]]
        stack.extend([*prefix, t] for t in reversed(allowed))


class LatencyTable:
    """Per-architecture costs, looked up by tokens or by a space-defined key.

    Args:
        entries: ``{key: cost}`` (keys as ``key`` makes them).
        key: ``"tokens"`` or a function of the tokens giving the key (e.g. an arch string).
        name: What the cost is (for messages), e.g. ``"latency"``.

    Example:
        >>> table = LatencyTable({"0,1": 2.5, "1,1": 4.0})
        >>> table([0, 1]), len(table)
        (2.5, 2)
        >>> try:
        ...     table([1, 0])
        ... except KeyError as e:
        ...     print(e.args[0].split(", but ")[1])
        got [1, 0] (key '1,0'), which has no entry
    """

    def __init__(
        self,
        entries: Mapping[str, float],
        *,
        key: str | KeyFunction = "tokens",
        name: str = "latency",
    ) -> None:
        if key != "tokens" and not callable(key):
            raise ValueError(
                f"`key` must be 'tokens' or a function of the tokens (e.g. an arch string), "
                f"but got {key!r}"
            )
        self.key = key
        self.name = name
        self._entries: dict[str, float] = {}
        for k, value in entries.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValueError(
                    f"`{name}` must be a finite number for every architecture, but got "
                    f"{value!r} for {k!r}"
                )
            if not math.isfinite(value):
                raise ValueError(
                    f"`{name}` must be a finite number for every architecture, but got "
                    f"{value!r} for {k!r}"
                )
            self._entries[self._normalise(str(k))] = float(value)

    @classmethod
    def from_csv(
        cls,
        path: str | os.PathLike[str],
        *,
        key: str | KeyFunction = "tokens",
        key_column: str | None = None,
        value_column: str | None = None,
        name: str | None = None,
    ) -> LatencyTable:
        """Reads a CSV (optionally gzipped) with a header row.

        Args:
            path: The file.
            key: ``"tokens"`` or a function of the tokens giving the keys of ``key_column``.
            key_column: The column of keys (None: the first).
            value_column: The column of costs (None: the second).
            name: What the cost is, for messages (None: the value column's name).

        Raises:
            ValueError: A missing column, an empty key, a duplicate key, or a cost that
                is not a finite number (the message names the line and the value).
        """
        path = os.fspath(path)
        with open(path, "rb") as f:
            data = f.read()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        reader = csv.reader(io.StringIO(data.decode("utf-8")))
        header = next(reader, None)
        if not header:
            raise ValueError(f"`path` must be a CSV with a header row, but {path!r} is empty")
        header = [h.strip() for h in header]
        if len(header) < 2:
            raise ValueError(
                f"`path` must have a key and a value column, but {path!r} has columns {header}"
            )
        key_column = header[0] if key_column is None else key_column
        value_column = header[1] if value_column is None else value_column
        for role, column in (("key_column", key_column), ("value_column", value_column)):
            if column not in header:
                raise ValueError(f"`{role}` must be one of {header}, but got {column!r}")
        k, v = header.index(key_column), header.index(value_column)
        name = value_column if name is None else name
        entries: dict[str, float] = {}
        table = cls({}, key=key, name=name)
        for line, row in enumerate(reader, start=2):
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) <= max(k, v):
                raise ValueError(
                    f"line {line} of {path!r} must have {len(header)} columns, but got {row!r}"
                )
            text, raw = row[k].strip(), row[v].strip()
            try:
                value = float(raw)
            except ValueError:
                value = math.nan
            if not text or not math.isfinite(value):
                what = "key" if not text else f"`{name}`"
                raise ValueError(
                    f"{what} on line {line} of {path!r} must be "
                    f"{'non-empty' if not text else 'a finite number'}, but got "
                    f"{(text if not text else raw)!r}"
                )
            normal = table._normalise(text)
            if normal in entries:
                raise ValueError(
                    f"keys of {path!r} must be unique, but {text!r} on line {line} is repeated"
                )
            entries[normal] = value
        table._entries = entries
        return table

    def _normalise(self, text: str) -> str:
        return _normalise_tokens_key(text) if self.key == "tokens" else text.strip()

    def key_of(self, tokens: Sequence[int]) -> str:
        """The table key of an architecture."""
        if self.key == "tokens":
            return _tokens_key(tokens)
        assert callable(self.key)
        return str(self.key(list(tokens))).strip()

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        key = self.key if isinstance(self.key, str) else getattr(self.key, "__name__", "key")
        return f"LatencyTable({len(self)} entries, key={key!r}, name={self.name!r})"

    def __call__(self, tokens: Sequence[int]) -> float:
        """The cost of an architecture.

        Raises:
            KeyError: The table has no entry for it.
        """
        key = self.key_of(tokens)
        try:
            return self._entries[key]
        except KeyError:
            raise KeyError(
                f"`tokens` must be an architecture of the {self.name} table, but got "
                f"{list(tokens)} (key {key!r}), which has no entry"
            ) from None

    def missing(self, architectures: Codec | Iterable[Sequence[int]]) -> list[list[int]]:
        """The architectures without an entry (a codec: every one of its finite space)."""
        found = (
            enumerate_tokens(architectures) if isinstance(architectures, Codec) else architectures
        )
        return [list(t) for t in found if self.key_of(t) not in self._entries]

    def check(self, architectures: Codec | Iterable[Sequence[int]]) -> None:
        """Raises unless every architecture has an entry (call it before a search).

        Raises:
            ValueError: Naming how many are missing and the first few.
        """
        missing = self.missing(architectures)
        if missing:
            shown = ", ".join(f"{t} ({self.key_of(t)!r})" for t in missing[:3])
            raise ValueError(
                f"the {self.name} table must have an entry for every architecture of the "
                f"space, but {len(missing)} have none, e.g. {shown}"
            )

    def entries(self) -> dict[str, Any]:
        """A copy of ``{key: cost}``."""
        return dict(self._entries)
