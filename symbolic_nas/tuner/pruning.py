"""Pruning in the tuner: between the evaluators' reports and the algorithm.

An evaluator reports (``sn.report``); the executor brings the report to the driver;
:class:`Pruning` journals it with the pruner's answer, tells the callbacks, and the
trial ends ``pruned`` when told to stop. What the algorithm then hears is the
``pruned_reward`` policy:

* ``"last"`` (the default): the trial's last reported value. Measured on the
  early-stopping benchmark (``benchmarks/RESULTS-cost.md``); it keeps a learning
  signal for every trial, on the reward's own scale (a pruned trial's value is
  the same quantity at fewer epochs, which under-states it, as it should).
* None: no learning signal (as a failed trial with ``failure_reward=None``).
* a float: a fixed penalty.

Decisions are kept consistent across attempts and sessions: the pruner's state is
rebuilt from the journal's ``report`` and ``end`` records on resume (in order), and
a step of a trial that the journal already answered gets the same answer again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from symbolic_nas.storage.records import EventKind, event_of, report_record
from symbolic_nas.storage.trial import Trial, TrialStatus
from symbolic_nas.training.reports import Report
from symbolic_nas.tuner.pruners import Pruner

__all__ = ["Pruning", "pruned_feedback"]


def pruned_feedback(trial: Trial, policy: str | float | None) -> float | None:
    """What the algorithm is told for a pruned trial under ``policy``.

    Example:
        >>> trial = Trial(0, [0], status="pruned", metrics={"step": 1, "value": 0.4})
        >>> [pruned_feedback(trial, policy) for policy in ("last", None, -1.0)]
        [0.4, None, -1.0]
    """
    if policy == "last":
        value = trial.metrics.get("value")
        return float(value) if isinstance(value, (int, float)) else None
    return None if policy is None else float(policy)


class Pruning:
    """The driver's side of reports: journal, decide, notify.

    Args:
        pruner: The stopping rule, or None (reports are journaled, never answered "stop").
        append: Appends a record to the run's journal.
        notify: Called with each report after it is journaled (the callbacks' hook).
    """

    def __init__(
        self,
        pruner: Pruner | None,
        append: Callable[[dict[str, Any]], None],
        notify: Callable[[Report, bool], None],
    ) -> None:
        self.pruner = pruner
        self._append = append
        self._notify = notify
        self._decided: dict[tuple[int, float], bool] = {}

    def rebuild(self, records: list[dict[str, Any]]) -> None:
        """Tells the pruner the journal's reports and trial ends again, in order."""
        for record in records:
            event = event_of(record)
            if event is EventKind.REPORT:
                trial_id, step = int(record["trial"]), record["step"]
                if self.pruner is not None:
                    self.pruner.report(trial_id, step, float(record["value"]))
                self._decided[(trial_id, step)] = bool(record["pruned"])
            elif event is EventKind.END and self.pruner is not None:
                trial = record["trial"]
                self.pruner.finish(int(trial["id"]), str(trial["status"]))

    def handle(self, report: Report) -> bool:
        """Journals ``report`` with the decision and returns it (True: stop the trial)."""
        key = (report.trial_id, report.step)
        if key in self._decided:  # A re-run attempt: the journal's answer stands.
            decision = self._decided[key]
            if self.pruner is not None:
                self.pruner.report(report.trial_id, report.step, report.value)
        else:
            decision = (
                self.pruner.report(report.trial_id, report.step, report.value)
                if self.pruner is not None
                else False
            )
            self._decided[key] = decision
        self._append(
            report_record(
                report.trial_id, report.step, report.value, report.metrics, pruned=decision
            )
        )
        self._notify(report, decision)
        return decision

    def finish(self, trial: Trial) -> None:
        """Tells the pruner a trial ended."""
        if self.pruner is not None:
            self.pruner.finish(trial.id, TrialStatus(trial.status).value)

    def budget(self, trial_id: int) -> float | None:
        """The resource the schedule gives ``trial_id`` (None without a pruner)."""
        return self.pruner.budget(trial_id) if self.pruner is not None else None
