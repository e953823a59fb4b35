"""The NAS-Bench-201 cell's encoding: its operations, edges and official arch strings.

A cell has six edges, listed in ``EDGES`` as ``(to_node, from_node)`` pairs in the
order of the official arch string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``; each
carries one of the five operations of ``OPS``, numbered by their position there,
so a cell is also six *codes* (ints 0..4), the tokens of the ``nasbench201`` space.
The table of :mod:`symbolic_nas.nasbench` reads its rows with these functions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "EDGES",
    "NUM_CELLS",
    "OPS",
    "arch_str_to_codes",
    "arch_str_to_ops",
    "codes_to_arch_str",
    "ops_to_arch_str",
]

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
NUM_CELLS: int = len(OPS) ** len(EDGES)
# Where the six "op~from" items sit in arch_str.split("|"), and their from-nodes.
_OP_POSITIONS = (1, 3, 4, 6, 7, 8)
_FROM_NODES = ("0", "0", "1", "0", "1", "2")


def ops_to_arch_str(ops: Sequence[str]) -> str:
    """Builds the arch string of a cell from its six ops in ``EDGES`` order.

    Raises:
        ValueError: If ``ops`` is not six names from ``OPS``.

    Example:
        >>> ops_to_arch_str(["nor_conv_3x3"] * 6)
        '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|'
    """
    if isinstance(ops, str) or len(ops) != len(EDGES):
        raise ValueError(f"`ops` must be a sequence of 6 op names, but got {ops!r}")
    for op in ops:
        if op not in OPS:
            raise ValueError(f"`ops` must hold names from {OPS}, but got {op!r} in {ops!r}")
    groups: dict[int, list[str]] = {}
    for op, (to_node, from_node) in zip(ops, EDGES, strict=True):
        groups.setdefault(to_node, []).append(f"{op}~{from_node}")
    return "+".join("|" + "|".join(group) + "|" for group in groups.values())


def arch_str_to_ops(arch_str: str) -> tuple[str, ...]:
    """Parses an arch string into its six ops in ``EDGES`` order.

    Raises:
        ValueError: If ``arch_str`` is malformed or names an unknown op.

    Example:
        >>> arch_str_to_ops(
        ...     "|none~0|+|skip_connect~0|nor_conv_1x1~1|"
        ...     "+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|")
        ('none', 'skip_connect', 'nor_conv_1x1', 'nor_conv_3x3', 'avg_pool_3x3', 'none')
    """
    if not isinstance(arch_str, str):
        raise ValueError(f"`arch_str` must be a str, but got {arch_str!r}")
    # "|a~0|+|b~0|c~1|+|d~0|e~1|f~2|" splits into
    # ["", "a~0", "+", "b~0", "c~1", "+", "d~0", "e~1", "f~2", ""].
    parts = arch_str.split("|")
    if len(parts) == 10 and parts[0] == parts[9] == "" and parts[2] == parts[5] == "+":
        ops = []
        for position, from_node in zip(_OP_POSITIONS, _FROM_NODES, strict=True):
            op, tilde, node = parts[position].partition("~")
            if node != from_node or not tilde:
                break
            if op not in OPS:
                raise ValueError(f"arch string {arch_str!r} has unknown op {op!r}; ops are {OPS}")
            ops.append(op)
        else:
            return tuple(ops)
    raise ValueError(
        f"arch string {arch_str!r} is malformed: expected the form "
        "'|op~0|+|op~0|op~1|+|op~0|op~1|op~2|' with ops from "
        f"{OPS}"
    )


def codes_to_arch_str(codes: Sequence[int]) -> str:
    """Builds the arch string of a cell from its six op codes.

    Raises:
        ValueError: If ``codes`` is not six ints in ``range(5)``.

    Example:
        >>> codes_to_arch_str([1, 1, 1, 1, 1, 1])[:30]
        '|skip_connect~0|+|skip_connect'
    """
    if (
        isinstance(codes, str)
        or len(codes) != len(EDGES)
        or not all(isinstance(c, (int, np.integer)) and 0 <= c < len(OPS) for c in codes)
    ):
        raise ValueError(f"`codes` must be 6 ints in range(5), but got {codes!r}")
    return ops_to_arch_str([OPS[c] for c in codes])


def arch_str_to_codes(arch_str: str) -> tuple[int, ...]:
    """Parses an arch string into its six op codes in ``EDGES`` order.

    Raises:
        ValueError: If ``arch_str`` is malformed or names an unknown op.

    Example:
        >>> arch_str_to_codes(ops_to_arch_str(["none"] * 6))
        (0, 0, 0, 0, 0, 0)
    """
    return tuple(OPS.index(op) for op in arch_str_to_ops(arch_str))
