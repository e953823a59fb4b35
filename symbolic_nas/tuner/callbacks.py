"""Callbacks observe a search; they never steer it.

The tuner calls every callback's hooks in order; the loop runs the same
without them. A callback that raises is reported and disabled for the rest of
the run (a logging failure never loses a trial).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from symbolic_nas.space.codec import Codec
from symbolic_nas.storage.trial import SearchResult, Trial
from symbolic_nas.training.reports import Report

__all__ = ["Callback", "SearchContext"]


@dataclasses.dataclass
class SearchContext:
    """What callbacks can see of a running search.

    Attributes:
        codec: The codec of the searched space.
        algorithm: The algorithm instance (``algorithm.stats()`` gives its statistics).
        num_trials: The planned number of trials.
        run_dir: The run directory, or None for an in-memory run.
        trials: Finished trials so far, in finishing order.
        start_time: Wall-clock start of this (possibly resumed) run.
        config: The run's JSON-able configuration.
        resumed: Whether this run continues an earlier one.
        evaluator: The evaluator (a stateful one's ``stats()`` are logged).
    """

    codec: Codec
    algorithm: Any
    num_trials: int
    run_dir: str | None = None
    trials: list[Trial] = dataclasses.field(default_factory=list)
    start_time: float = 0.0
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    resumed: bool = False
    evaluator: Any = None

    @property
    def best(self) -> Trial | None:
        """The best completed trial so far."""
        return SearchResult(self.trials).best


class Callback:
    """Base class: override the hooks you need."""

    def on_search_start(self, context: SearchContext) -> None:
        """Before the first trial (also when a run is resumed; finished trials are in
        ``context.trials``)."""

    def on_trial_start(self, trial: Trial, context: SearchContext) -> None:
        """A trial was handed to a worker."""

    def on_trial_report(
        self, trial: Trial, report: Report, pruned: bool, context: SearchContext
    ) -> None:
        """A running trial reported an intermediate value (``sn.report``); ``pruned``
        says whether the pruner stopped it there."""

    def on_trial_end(self, trial: Trial, context: SearchContext) -> None:
        """A trial finished (completed, failed or pruned) and its feedback was given."""

    def on_search_end(self, result: SearchResult, context: SearchContext) -> None:
        """After the last trial, or when the run stops on an error."""
