"""Hyperband over asynchronous successive halving (Li et al., JMLR 2018)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from symbolic_nas.tuner.pruners.asha import ASHAPruner
from symbolic_nas.tuner.pruners.base import Pruner, register
from symbolic_nas.validation import Interval, parameter_error


@register("hyperband")
class HyperbandPruner(Pruner):
    """Several ASHA brackets with growing minimum resources, to hedge against a cut
    that is too early.

    With ``s_max = floor(log_η(max_resource / min_resource))``, bracket ``b`` (0 to
    ``s_max``) is an :class:`~symbolic_nas.tuner.pruners.asha.ASHAPruner` whose first
    rung sits at ``min_resource * η ** b``; the last bracket never stops a trial. A
    trial's bracket follows from its id, in proportions of Hyperband's trial counts
    ``n_s = ceil((s_max + 1) / (s + 1) * η ** s)`` (``s = s_max - b``), so it needs no
    state of its own; trials compete only within their bracket.

    Reference: L. Li, K. Jamieson, G. DeSalvo, A. Rostamizadeh and A. Talwalkar,
    "Hyperband: A Novel Bandit-Based Approach to Hyperparameter Optimization",
    JMLR 18, 2018.

    Args:
        max_resource: The full resource of a trial (e.g. its epochs), Hyperband's R,
            also each trial's :meth:`budget` (``sn.Trainer`` then trains that many
            epochs); None: the brackets are laid out for ``R = min_resource * η ** 2``
            and trials get no budget (the evaluator's own length).
        reduction_factor: η, above 1.
        min_resource: The smallest first rung, above 0.

    Example:
        >>> pruner = HyperbandPruner(max_resource=9, reduction_factor=3)
        >>> pruner.counts, [pruner.bracket(i) for i in range(12)]
        ([9, 5, 3], [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1])
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "max_resource": [None, Interval(float, 0, None, closed="neither")],
        "reduction_factor": [Interval(float, 1, None, closed="neither")],
        "min_resource": [Interval(float, 0, None, closed="neither")],
    }

    def __init__(
        self,
        *,
        max_resource: float | None = None,
        reduction_factor: float = 3,
        min_resource: float = 1,
    ) -> None:
        self._validate(
            {
                "max_resource": max_resource,
                "reduction_factor": reduction_factor,
                "min_resource": min_resource,
            }
        )
        super().__init__()
        self.max_resource = max_resource
        self.reduction_factor = reduction_factor
        self.min_resource = min_resource
        if max_resource is not None and max_resource < min_resource:
            raise parameter_error(
                "max_resource", f"at least min_resource={min_resource!r}", max_resource
            )
        layout = max_resource if max_resource is not None else min_resource * reduction_factor**2
        ratio = layout / min_resource
        s_max = math.floor(math.log(ratio, reduction_factor) + 1e-9) if ratio >= 1 else 0
        self.brackets = [
            ASHAPruner(
                reduction_factor=reduction_factor,
                min_resource=min_resource * reduction_factor**b,
                max_resource=layout if max_resource is None else max_resource,
            )
            for b in range(s_max + 1)
        ]
        self.counts = [
            math.ceil((s_max + 1) / (s + 1) * reduction_factor**s) for s in range(s_max, -1, -1)
        ]

    def bracket(self, trial_id: int) -> int:
        """The bracket of a trial (by its id, in proportion to :attr:`counts`)."""
        position = trial_id % sum(self.counts)
        for b, count in enumerate(self.counts):
            if position < count:
                return b
            position -= count
        return len(self.counts) - 1

    def budget(self, trial_id: int) -> float | None:
        del trial_id
        return self.max_resource

    def _decide(self, trial_id: int, step: float, value: float) -> bool:
        return self.brackets[self.bracket(trial_id)].report(trial_id, step, value)

    def finish(self, trial_id: int, status: str) -> None:
        super().finish(trial_id, status)
        self.brackets[self.bracket(trial_id)].finish(trial_id, status)
