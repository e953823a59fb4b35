"""NAS-Bench-201 results on CIFAR-10 as an in-memory lookup table.

The package ships ``data/nb201_cifar10.csv.gz``: the CIFAR-10 results of all 15,625
NAS-Bench-201 cells (see ``data/README.md`` here for sources, licences and columns).
"""

from __future__ import annotations

import csv
import gzip
import importlib.resources
import io
import os
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from symbolic_nas.spaces import nasbench201_cell as cell

__all__ = ["NasBench201Table"]

_FILE_NAME = "nb201_cifar10.csv.gz"
_REQUIRED_COLUMNS = ("index", "arch_str")


class NasBench201Table:
    """The NAS-Bench-201 CIFAR-10 table: query any of the 15,625 cells by string or codes.

    A cell has six edges, each carrying one of five operations. The edges are
    listed in :attr:`EDGES` as ``(to_node, from_node)`` pairs, in the order of the
    official arch string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``; the operations
    in :attr:`OPS` are numbered by their position there, so a cell is also six
    *codes* (ints 0..4). Rows follow the file; metric columns are float64 arrays
    aligned with the rows (accuracies in percent).

    Args:
        path: A CSV (optionally gzip-compressed) with a header holding at least
            ``index`` and ``arch_str``; every other column must be numeric (empty
            cells read as NaN). Defaults to the table shipped with the package.

    Raises:
        ValueError: If the file lacks required columns, has a malformed value, or
            repeats an index or architecture.

    Example:
        >>> table = NasBench201Table()
        >>> len(table)
        15625
        >>> row = table.row_of_codes([3, 3, 3, 1, 3, 2])
        >>> table.arch_str(int(table.indices[row]))
        '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|'
        >>> round(float(table.column("c10_test_200")[row]), 4)
        94.3733
    """

    OPS: ClassVar[tuple[str, ...]] = cell.OPS
    EDGES: ClassVar[tuple[tuple[int, int], ...]] = cell.EDGES
    NUM_CELLS: ClassVar[int] = cell.NUM_CELLS
    # The cell's arch-string codec (defined with the space, in symbolic_nas.spaces).
    ops_to_arch_str = staticmethod(cell.ops_to_arch_str)
    arch_str_to_ops = staticmethod(cell.arch_str_to_ops)
    codes_to_arch_str = staticmethod(cell.codes_to_arch_str)
    arch_str_to_codes = staticmethod(cell.arch_str_to_codes)

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        if path is None:
            resource = importlib.resources.files(__package__) / "data" / _FILE_NAME
            self._source = f"<symbolic_nas.nasbench>/data/{_FILE_NAME}"
            with resource.open("rb") as f:
                raw = f.read()
        else:
            if not isinstance(path, (str, os.PathLike)):
                raise ValueError(f"`path` must be a str, os.PathLike or None, but got {path!r}")
            self._source = os.fspath(path)
            with open(path, "rb") as f:
                raw = f.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        self._load(raw.decode("utf-8"))

    # Loading -----------------------------------------------------------------

    def _load(self, text: str) -> None:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if header is None:
            raise ValueError(f"NAS-Bench-201 table {self._source!r} is empty")
        header = [name.strip() for name in header]
        missing = [name for name in _REQUIRED_COLUMNS if name not in header]
        if missing:
            raise ValueError(
                f"NAS-Bench-201 table {self._source!r} lacks required column(s) {missing}; "
                f"its header is {header}"
            )
        if len(set(header)) != len(header):
            raise ValueError(f"NAS-Bench-201 table {self._source!r} repeats a column: {header}")
        rows = [row for row in reader if row]
        width = len(header)
        for line, row in enumerate(rows, start=2):
            if len(row) != width:
                raise ValueError(
                    f"{self._source!r} line {line} has {len(row)} fields, expected {width}"
                )
        by_name = dict(zip(header, zip(*rows, strict=True), strict=True)) if rows else {}
        index_pos = header.index("index")
        arch_pos = header.index("arch_str")

        try:
            indices = np.array([int(row[index_pos]) for row in rows], dtype=np.int64)
        except ValueError as e:
            raise ValueError(f"{self._source!r}: column 'index' must hold integers: {e}") from None
        arch_strs = tuple(row[arch_pos] for row in rows)
        codes = np.empty((len(rows), len(self.EDGES)), dtype=np.int64)
        code_of_op = {op: code for code, op in enumerate(self.OPS)}
        for row_number, arch in enumerate(arch_strs):
            try:
                ops = self.arch_str_to_ops(arch)
            except ValueError as e:
                raise ValueError(f"{self._source!r} line {row_number + 2}: {e}") from None
            codes[row_number] = [code_of_op[op] for op in ops]

        self._columns = tuple(name for name in header if name not in _REQUIRED_COLUMNS)
        self._data: dict[str, np.ndarray] = {}
        for name in self._columns:
            try:
                values = [float(v) if v.strip() else np.nan for v in by_name.get(name, ())]
            except ValueError as e:
                raise ValueError(
                    f"{self._source!r}: column {name!r} must be numeric: {e}"
                ) from None
            self._data[name] = np.array(values, dtype=np.float64)
            self._data[name].flags.writeable = False

        self._row_of_index = {int(index): row for row, index in enumerate(indices)}
        if len(self._row_of_index) != len(rows):
            raise ValueError(f"NAS-Bench-201 table {self._source!r} repeats an index")
        self._row_of_arch = {arch: row for row, arch in enumerate(arch_strs)}
        if len(self._row_of_arch) != len(rows):
            raise ValueError(f"NAS-Bench-201 table {self._source!r} repeats an architecture")
        self._indices = indices
        self._indices.flags.writeable = False
        self._arch_strs = arch_strs
        self._codes = codes
        self._codes.flags.writeable = False
        # Row of every cell by its codes read as a base-5 number (first edge most
        # significant); -1 where the file has no row for the cell.
        weights = len(self.OPS) ** np.arange(len(self.EDGES) - 1, -1, -1)
        self._weights = weights
        self._rows_by_key = np.full(self.NUM_CELLS, -1, dtype=np.int64)
        self._rows_by_key[codes @ weights] = np.arange(len(rows))
        self._rows_by_key.flags.writeable = False
        self._rows_by_key_list: list[int] = self._rows_by_key.tolist()

    # Table access -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._arch_strs)

    def __repr__(self) -> str:
        return f"NasBench201Table({self._source!r}, rows={len(self)})"

    @property
    def columns(self) -> tuple[str, ...]:
        """Names of the numeric metric columns (all but ``index`` and ``arch_str``)."""
        return self._columns

    @property
    def indices(self) -> np.ndarray:
        """Official NAS-Bench-201 index of every row (read-only int64 array)."""
        return self._indices

    @property
    def codes(self) -> np.ndarray:
        """Op codes of every row, ``[len(table), 6]`` in :attr:`EDGES` order (read-only)."""
        return self._codes

    def column(self, name: str) -> np.ndarray:
        """Returns one metric column as a read-only float64 array aligned by row.

        Args:
            name: One of :attr:`columns`, e.g. ``"c10_test_200"``.

        Raises:
            KeyError: If there is no such column.

        Example:
            >>> table = NasBench201Table()
            >>> float(table.column("c10valid_val_200").max())
            91.6067
        """
        try:
            return self._data[name]
        except (KeyError, TypeError):
            raise KeyError(f"unknown column {name!r}; columns are {list(self._columns)}") from None

    def index_of(self, arch_str: str) -> int:
        """Returns the official index of a cell given its arch string.

        Raises:
            ValueError: If ``arch_str`` is malformed.
            KeyError: If it is well formed but not in the table.

        Example:
            >>> NasBench201Table().index_of(
            ...     "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
            ...     "+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
            6111
        """
        row = self._row_of_arch.get(arch_str) if isinstance(arch_str, str) else None
        if row is None:
            self.arch_str_to_ops(arch_str)  # Raises ValueError if malformed.
            raise KeyError(f"arch string {arch_str!r} is not in the table")
        return int(self._indices[row])

    def arch_str(self, index: int) -> str:
        """Returns the arch string of the cell with official index ``index``.

        Raises:
            KeyError: If no row has this index.

        Example:
            >>> NasBench201Table().arch_str(0)
            '|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|'
        """
        row = self.row_of_index(index)
        return self._arch_strs[row]

    def row_of_index(self, index: int) -> int:
        """Returns the row holding official index ``index``.

        Raises:
            KeyError: If no row has this index.

        Example:
            >>> NasBench201Table().row_of_index(42)
            42
        """
        try:
            return self._row_of_index[index]
        except (KeyError, TypeError):
            raise KeyError(f"index {index!r} is not in the table") from None

    def row_of_codes(self, codes: Sequence[int]) -> int:
        """Returns the row of the cell with the given op codes (one list lookup).

        Args:
            codes: Six ints in ``range(5)``: the :attr:`OPS` position of the op on
                each edge, in :attr:`EDGES` order.

        Raises:
            ValueError: If ``codes`` is not six ints in ``range(5)``.
            KeyError: If the table has no row for this cell (custom files only).

        Example:
            >>> table = NasBench201Table()
            >>> row = table.row_of_codes((3, 3, 3, 1, 3, 2))
            >>> int(table.indices[row])
            6111
        """
        try:
            c0, c1, c2, c3, c4, c5 = codes
            if (
                0 <= c0 < 5
                and 0 <= c1 < 5
                and 0 <= c2 < 5
                and 0 <= c3 < 5
                and 0 <= c4 < 5
                and 0 <= c5 < 5
            ):
                row = self._rows_by_key_list[
                    ((((c0 * 5 + c1) * 5 + c2) * 5 + c3) * 5 + c4) * 5 + c5
                ]
                if row >= 0:
                    return row
                raise KeyError(f"codes {codes!r} are not in the table")
        except (TypeError, ValueError):
            pass
        raise ValueError(f"`codes` must be 6 ints in range(5), but got {codes!r}")

    def rows_of_codes(self, codes: np.ndarray | Sequence[Sequence[int]]) -> np.ndarray:
        """Vectorised :meth:`row_of_codes`: rows of many cells at once.

        Args:
            codes: Integer array-like of shape ``[..., 6]`` with values in ``range(5)``.

        Returns:
            An int64 array of shape ``codes.shape[:-1]``.

        Raises:
            ValueError: If ``codes`` has the wrong shape, type or range.
            KeyError: If the table lacks one of the cells (custom files only).

        Example:
            >>> NasBench201Table().rows_of_codes([[3, 3, 3, 1, 3, 2], [0, 0, 0, 0, 0, 0]]).shape
            (2,)
        """
        array = np.asarray(codes)
        if (
            array.ndim < 1
            or array.shape[-1] != len(self.EDGES)
            or not (np.issubdtype(array.dtype, np.integer) or array.size == 0)
            or (array.size and (array.min() < 0 or array.max() >= len(self.OPS)))
        ):
            raise ValueError(
                f"`codes` must be integers in range(5) of shape [..., 6], but got {codes!r}"
            )
        rows = self._rows_by_key[array.astype(np.int64) @ self._weights]
        if rows.size and rows.min() < 0:
            missing = array[rows < 0][0].tolist()
            raise KeyError(f"codes {missing!r} are not in the table")
        return rows
