"""Pareto dominance on objective vectors where every entry is maximised.

The helpers behind ``nsga2`` (non-dominated sorting and crowding distance, Deb et
al., IEEE TEC 2002), ``SearchResult.pareto_front()`` and the multi-objective
benchmark (the hypervolume of two objectives). A minimised objective enters
negated, so larger is always better here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = [
    "crowding_distance",
    "dominates",
    "hypervolume_2d",
    "non_dominated_sort",
    "pareto_indices",
]

Vector = Sequence[float]


def dominates(a: Vector, b: Vector) -> bool:
    """Whether ``a`` is at least as good as ``b`` everywhere and better somewhere.

    Example:
        >>> dominates([2, 1], [1, 1]), dominates([2, 0], [1, 1]), dominates([1, 1], [1, 1])
        (True, False, False)
    """
    better = False
    for x, y in zip(a, b):
        if x < y:
            return False
        better = better or x > y
    return better


def non_dominated_sort(points: Sequence[Vector]) -> list[list[int]]:
    """The fronts of ``points`` (indices), best first (Deb et al.'s fast sort, O(M·N²)).

    Example:
        >>> non_dominated_sort([[1, 1], [2, 2], [0, 3], [0, 0]])
        [[1, 2], [0], [3]]
    """
    n = len(points)
    dominated_by: list[list[int]] = [[] for _ in range(n)]
    counts = [0] * n
    for i in range(n):
        for j in range(i + 1, n):
            if dominates(points[i], points[j]):
                dominated_by[i].append(j)
                counts[j] += 1
            elif dominates(points[j], points[i]):
                dominated_by[j].append(i)
                counts[i] += 1
    fronts: list[list[int]] = []
    current = [i for i in range(n) if counts[i] == 0]
    while current:
        fronts.append(current)
        following = []
        for i in current:
            for j in dominated_by[i]:
                counts[j] -= 1
                if counts[j] == 0:
                    following.append(j)
        current = sorted(following)
    return fronts


def pareto_indices(points: Sequence[Vector]) -> list[int]:
    """Indices of the non-dominated points (the first front), in input order.

    Example:
        >>> pareto_indices([[1, 1], [2, 2], [0, 3], [0, 0]])
        [1, 2]
    """
    if points and len(points[0]) == 2:  # A sweep, O(N log N): large results and tables.
        order = sorted(range(len(points)), key=lambda i: (-points[i][0], -points[i][1]))
        kept: list[int] = []
        best_y, last = -math.inf, None
        for i in order:
            x, y = points[i]
            if y > best_y:
                kept.append(i)
                best_y, last = y, (x, y)
            elif (x, y) == last:  # an equal point is not dominated either
                kept.append(i)
        return sorted(kept)
    return non_dominated_sort(points)[0] if points else []


def crowding_distance(points: Sequence[Vector]) -> list[float]:
    """Deb et al.'s crowding distance of each point within its front.

    Boundary points of every objective get ``inf``; the others the sum over
    objectives of the normalised gap between their two neighbours.

    Example:
        >>> crowding_distance([[0, 2], [1, 1], [2, 0]])
        [inf, 2.0, inf]
    """
    n = len(points)
    distance = [0.0] * n
    if n == 0:
        return distance
    for m in range(len(points[0])):
        order = sorted(range(n), key=lambda i: points[i][m])
        low, high = points[order[0]][m], points[order[-1]][m]
        distance[order[0]] = distance[order[-1]] = math.inf
        if high == low:
            continue
        for k in range(1, n - 1):
            gap = points[order[k + 1]][m] - points[order[k - 1]][m]
            distance[order[k]] += gap / (high - low)
    return distance


def hypervolume_2d(points: Sequence[Vector], reference: Vector) -> float:
    """The area dominated by ``points`` (both entries maximised) above ``reference``.

    Points that do not strictly improve on ``reference`` in both entries add nothing.

    Example:
        >>> hypervolume_2d([[1, 3], [2, 2], [3, 1]], reference=[0, 0])
        6.0
    """
    rx, ry = float(reference[0]), float(reference[1])
    kept = sorted((float(x), float(y)) for x, y in points if x > rx and y > ry)
    area, best_y = 0.0, ry
    for x, y in reversed(kept):  # from the largest first entry down
        if y > best_y:
            area += (x - rx) * (y - best_y)
            best_y = y
    return area
