"""NAS-Bench-201 as an evaluator: search its cell space, score cells from the table.

Xuanyi Dong and Yi Yang, "NAS-Bench-201: Extending the Scope of Reproducible
Neural Architecture Search", ICLR 2020. The benchmark's protocol: a search
selects by the 12-epoch validation accuracy (``c10valid_val_12``) and reports
the 200-epoch test accuracy of its pick (``c10_test_200``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import pyglove as pg

from symbolic_nas import spaces
from symbolic_nas.nasbench.table import NasBench201Table
from symbolic_nas.space.codec import Codec, encode
from symbolic_nas.tuner.evaluators import evaluator

__all__ = ["NasBench201"]


class NasBench201:
    """The NAS-Bench-201 search space with a tabular evaluator (microseconds per trial).

    Args:
        path: A CSV (optionally gzipped) with the ``index,arch_str,...`` layout of
            the shipped table, or None for the shipped CIFAR-10 table.
        fitness: The column returned as the reward by :meth:`evaluate`.
        report: The column :meth:`report` returns (also a metric of :meth:`evaluate`).

    Attributes:
        table: The :class:`NasBench201Table`.
        space: The ``nasbench201`` space (``spaces.get("nasbench201")``): six op
            decisions whose tokens are the table's op codes.
        codec: The space's codec, compiled once.
        fitness_column: The name given as ``fitness``.
        report_column: The name given as ``report``.

    Raises:
        ValueError: ``fitness`` or ``report`` is not a numeric column of the table
            (the message lists the columns), or the file is malformed.

    Example:
        >>> bench = NasBench201()
        >>> best = [3, 3, 3, 1, 3, 2]                 # op codes in EDGES order
        >>> bench.evaluate(best)
        {'reward': 84.384, 'c10valid_val_12': 84.384, 'c10_test_200': 94.3733, 'index': 6111}
        >>> bench.report(best), bench.index(best)
        (94.3733, 6111)
        >>> from symbolic_nas.tuner.evaluators import input_of
        >>> input_of(bench.evaluate)
        'tokens'
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        fitness: str = "c10valid_val_12",
        report: str = "c10_test_200",
    ) -> None:
        table = NasBench201Table(path)
        for name, value in (("fitness", fitness), ("report", report)):
            if not isinstance(value, str) or value not in table.columns:
                raise ValueError(
                    f"`{name}` must be one of the table's columns {list(table.columns)}, "
                    f"but got {value!r}"
                )
        self.table = table
        self.fitness_column = fitness
        self.report_column = report
        self.space = spaces.get("nasbench201")
        self.codec: Codec = encode(self.space)
        self._fitness: list[float] = table.column(fitness).tolist()
        self._report: list[float] = table.column(report).tolist()
        self._indices: list[int] = table.indices.tolist()

    def __repr__(self) -> str:
        return (
            f"NasBench201(table={self.table!r}, fitness={self.fitness_column!r}, "
            f"report={self.report_column!r})"
        )

    @evaluator(input="tokens")
    def evaluate(self, tokens: Sequence[int]) -> dict[str, Any]:
        """The fitness of a cell as ``reward``, with the report column and official index.

        Args:
            tokens: Six op codes in ``EDGES`` order (the space's tokens).

        Returns:
            ``{"reward": fitness, <fitness column>: fitness, <report column>: report,
            "index": official index}``.

        Raises:
            ValueError: ``tokens`` is not six ints in ``range(5)``.
            KeyError: a custom table has no row for the cell.
        """
        row = self.table.row_of_codes(tokens)
        fitness = self._fitness[row]
        return {
            "reward": fitness,
            self.fitness_column: fitness,
            self.report_column: self._report[row],
            "index": self._indices[row],
        }

    def report(self, architecture: Any) -> float:
        """The report column of an architecture.

        Args:
            architecture: Anything with ``.tokens`` (a ``Trial``, a ``Proposal``), a
                ``pg.DNA`` of :attr:`space`, or a token sequence.

        Example:
            >>> NasBench201().report([0, 0, 0, 0, 0, 0])
            10.0
        """
        return self._report[self._row(architecture)]

    def index(self, architecture: Any) -> int:
        """The official NAS-Bench-201 index of an architecture (as :meth:`report` takes it)."""
        return self._indices[self._row(architecture)]

    def arch_str(self, architecture: Any) -> str:
        """The official arch string of an architecture (as :meth:`report` takes it).

        Example:
            >>> NasBench201().arch_str([1, 1, 1, 1, 1, 1])[:32]
            '|skip_connect~0|+|skip_connect~0'
        """
        return self.table.arch_str(self.index(architecture))

    def _row(self, architecture: Any) -> int:
        if architecture is None:
            raise ValueError(
                "`architecture` must be a trial or proposal (with .tokens), a pg.DNA or a "
                "token list, but got None (e.g. a search with no completed trial)"
            )
        tokens = getattr(architecture, "tokens", architecture)
        if isinstance(tokens, pg.DNA):
            tokens = self.codec.to_tokens(tokens)
        return self.table.row_of_codes(tokens)
