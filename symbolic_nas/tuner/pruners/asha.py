"""Asynchronous successive halving (Li et al., MLSys 2020)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from symbolic_nas.tuner.pruners.base import Pruner, register
from symbolic_nas.validation import Interval, parameter_error


@register("asha")
class ASHAPruner(Pruner):
    """Asynchronous successive halving as a stopping rule.

    Rungs sit at resources ``min_resource * reduction_factor ** k`` (below
    ``max_resource`` when one is given). When a trial's report first reaches a
    rung's resource, its value is recorded in that rung, and the trial goes on only
    if it is in the top ``1 / reduction_factor`` of the values recorded there so far;
    no trial waits for a rung to fill. While a rung holds fewer than
    ``reduction_factor`` values, only the best goes on (as in Optuna's
    ``SuccessiveHalvingPruner``: trials are stopped, never suspended).

    Reference: L. Li, K. Jamieson, A. Rostamizadeh, E. Gonina, J. Ben-Tzur, M. Hardt,
    B. Recht and A. Talwalkar, "A System for Massively Parallel Hyperparameter
    Tuning", MLSys 2020.

    Args:
        reduction_factor: η, above 1: one trial in η goes on at each rung.
        min_resource: The resource (step) of the first rung, above 0.
        max_resource: The full resource of a trial (e.g. its epochs): no rung at or
            above it, and the trial's :meth:`budget`; None: rungs without end and no
            budget.

    Example:
        >>> pruner = ASHAPruner(reduction_factor=2, min_resource=1)
        >>> pruner.rungs(8)
        [1, 2, 4, 8]
        >>> pruner.report(0, 1, 0.5), pruner.report(1, 1, 0.4), pruner.report(2, 1, 0.9)
        (False, True, False)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "reduction_factor": [Interval(float, 1, None, closed="neither")],
        "min_resource": [Interval(float, 0, None, closed="neither")],
        "max_resource": [None, Interval(float, 0, None, closed="neither")],
    }

    def __init__(
        self,
        *,
        reduction_factor: float = 3,
        min_resource: float = 1,
        max_resource: float | None = None,
    ) -> None:
        self._validate(
            {
                "reduction_factor": reduction_factor,
                "min_resource": min_resource,
                "max_resource": max_resource,
            }
        )
        if max_resource is not None and max_resource < min_resource:
            raise parameter_error(
                "max_resource",
                f"at least min_resource={min_resource!r}",
                max_resource,
            )
        super().__init__()
        self.reduction_factor = reduction_factor
        self.min_resource = min_resource
        self.max_resource = max_resource
        self.rung_values: dict[int, dict[int, float]] = {}  # rung -> trial -> value

    def rungs(self, up_to: float) -> list[float]:
        """The rung resources up to ``up_to`` (and below ``max_resource``)."""
        found: list[float] = []
        k = 0
        while True:
            resource = self.min_resource * self.reduction_factor**k
            if resource > up_to or (
                self.max_resource is not None and resource >= self.max_resource
            ):
                return found
            found.append(int(resource) if float(resource).is_integer() else resource)
            k += 1

    def budget(self, trial_id: int) -> float | None:
        del trial_id
        return self.max_resource

    def _decide(self, trial_id: int, step: float, value: float) -> bool:
        # A trial is judged once per rung, when its report first reaches the rung.
        for k in range(len(self.rungs(step))):
            rung = self.rung_values.setdefault(k, {})
            if trial_id in rung:
                continue
            rung[trial_id] = value
            if not _promotable(value, list(rung.values()), self.reduction_factor):
                return True
        return False


def _promotable(value: float, values: list[float], reduction_factor: float) -> bool:
    """Whether ``value`` is in the top ``1 / reduction_factor`` of ``values`` (the best
    alone while fewer than ``reduction_factor`` are recorded).

    Example:
        >>> _promotable(0.5, [0.5, 0.9, 0.1], 3), _promotable(0.9, [0.5, 0.9, 0.1], 3)
        (False, True)
    """
    ranked = sorted(values, reverse=True)
    keep = max(1, math.floor(len(ranked) / reduction_factor))
    return value >= ranked[keep - 1]
