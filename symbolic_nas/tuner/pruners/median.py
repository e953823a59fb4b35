"""The median stopping rule (Golovin et al., "Google Vizier", KDD 2017)."""

from __future__ import annotations

import statistics
from typing import Any, ClassVar

from symbolic_nas.tuner.pruners.base import Pruner, register
from symbolic_nas.validation import Interval


@register("median")
class MedianPruner(Pruner):
    """Stops a trial whose best value so far is below the median of the completed trials'
    running averages at the same step.

    At a report at step ``s``, the running average of a completed trial is the mean
    of its reports at steps ``<= s``; the trial is stopped when its best value so far
    is below the median of those averages. Only completed (not pruned, not failed)
    trials count, and the rule waits for ``min_trials`` of them and for step
    ``warmup_steps``.

    Reference: D. Golovin, B. Solnik, S. Moitra, G. Kochanski, J. Karro and D. Sculley,
    "Google Vizier: A Service for Black-Box Optimization", KDD 2017 (section 3.2.2).

    Args:
        min_trials: Completed trials needed before any trial is stopped.
        warmup_steps: Reports at steps below this are never stopped.

    Example:
        >>> pruner = MedianPruner(min_trials=2)
        >>> for trial, values in enumerate([[0.5, 0.6], [0.7, 0.8]]):
        ...     for step, value in enumerate(values, start=1):
        ...         _ = pruner.report(trial, step, value)
        ...     pruner.finish(trial, "completed")
        >>> pruner.report(2, 1, 0.55), pruner.report(3, 1, 0.65)
        (True, False)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "min_trials": [Interval(int, 1, None)],
        "warmup_steps": [Interval(float, 0, None)],
    }

    def __init__(self, *, min_trials: int = 5, warmup_steps: float = 0) -> None:
        self._validate({"min_trials": min_trials, "warmup_steps": warmup_steps})
        super().__init__()
        self.min_trials = min_trials
        self.warmup_steps = warmup_steps

    def _decide(self, trial_id: int, step: float, value: float) -> bool:
        if step < self.warmup_steps or len(self.completed) < self.min_trials:
            return False
        averages = []
        for other in self.completed:
            seen = [v for s, v in self.curves.get(other, {}).items() if s <= step]
            if seen:
                averages.append(sum(seen) / len(seen))
        if len(averages) < self.min_trials:
            return False
        curve = self.curves[trial_id]
        best = max(v for s, v in curve.items() if s <= step)
        return best < statistics.median(averages)
