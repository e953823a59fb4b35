"""Intermediate reports of a running trial: ``sn.report`` and ``sn.current_trial``.

An evaluator (the built-in :class:`~symbolic_nas.training.Trainer` or a training
loop of your own) calls :func:`report` after each epoch (or every few batches) with
the step and the value so far (higher is better, like the reward). The call goes to
the search driver wherever the trial runs (inline, in a worker process, on a Ray
actor), which journals it, shows it in TensorBoard and asks the search's pruner. If
the pruner stops the trial, :func:`report` raises :class:`TrialPruned`; let it
propagate (or return: the trial ends ``pruned`` all the same).

Outside a search (an evaluator called by hand), :func:`current_trial` is None and
:func:`report` raises; the Trainer only reports inside a search.

Example:
    >>> import symbolic_nas as sn
    >>> def evaluate(arch):
    ...     value = 0.0
    ...     for epoch in range(1, 4):
    ...         value += arch["rate"]
    ...         sn.report(epoch, value)  # raises sn.TrialPruned when stopped
    ...     return value
    >>> result = sn.search({"rate": sn.oneof([0.1, 0.2, 0.3])}, evaluate,
    ...                    algorithm="random", num_trials=4, seed=0)
    >>> sorted({t.status.value for t in result.trials})
    ['completed']
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import numbers
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = ["Report", "TrialContext", "TrialPruned", "current_trial", "report", "reporting"]


class TrialPruned(Exception):
    """Raised by :func:`report` when the search's pruner stops the trial.

    Let it propagate out of the evaluator: the trial then ends with status
    ``pruned``, keeping its last report. Catching it and returning ends the trial
    ``pruned`` as well (the decision stands).

    Example:
        >>> issubclass(TrialPruned, Exception)
        True
    """


@dataclasses.dataclass(frozen=True)
class Report:
    """One intermediate result of a trial, as it travels to the driver.

    Attributes:
        trial_id: The trial.
        step: The step (epoch, or a fraction of epochs), an int or float >= 0.
        value: The value so far (higher is better), finite.
        metrics: Other JSON-able numbers reported with it.
    """

    trial_id: int
    step: float
    value: float
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)

    def as_metrics(self) -> dict[str, Any]:
        """The report as a pruned trial keeps it: ``step``, ``value`` and the metrics.

        Example:
            >>> Report(3, 2, 0.5, {"loss": 1.0}).as_metrics()
            {'loss': 1.0, 'step': 2, 'value': 0.5}
        """
        return {**self.metrics, "step": self.step, "value": self.value}


class TrialContext:
    """The running trial, as its evaluator sees it (:func:`current_trial`).

    Attributes:
        trial_id: The trial's id.
        budget: The resource the search's schedule gives this trial (epochs; the
            Trainer trains for that many), or None for the evaluator's own choice.
        pruned: Whether a report was answered with "stop".
        last: The last report, or None.

    Args:
        trial_id: The trial's id.
        send: Delivers a :class:`Report` to the driver and returns whether to stop.
        budget: See above.
    """

    def __init__(
        self, trial_id: int, send: Callable[[Report], bool], *, budget: float | None = None
    ) -> None:
        self.trial_id = trial_id
        self.budget = budget
        self.pruned = False
        self.last: Report | None = None
        self._send = send
        self._ended = False

    def report(self, step: float, value: float, **metrics: Any) -> None:
        """Reports ``value`` at ``step``; raises :class:`TrialPruned` if the trial must stop.

        Raises:
            TrialPruned: When the pruner stops the trial (also on a report after that).
            RuntimeError: If the trial has ended.
            InvalidParameterError: If ``step`` is not a number >= 0 or not above the last
                step, or ``value`` is not a finite number (a ``ValueError``).
        """
        from symbolic_nas.validation import InvalidParameterError

        if self._ended:
            raise RuntimeError(
                f"`report` must be called while its trial runs, but trial {self.trial_id} has ended"
            )
        if self.pruned:
            raise TrialPruned(f"trial {self.trial_id} was pruned")
        step = _plain_number(step)
        value = _plain_number(value)
        if not isinstance(step, numbers.Real) or isinstance(step, bool) or not step >= 0:
            raise InvalidParameterError(f"`step` must be a number >= 0, but got {step!r}")
        if self.last is not None and step <= self.last.step:
            raise InvalidParameterError(
                f"`step` must grow from report to report, but got {step!r} after {self.last.step!r}"
            )
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise InvalidParameterError(f"`value` must be a finite number, but got {value!r}")
        if not math.isfinite(float(value)):
            raise InvalidParameterError(f"`value` must be a finite number, but got {value!r}")
        plain = {str(k): _plain_number(v) for k, v in metrics.items()}
        item = Report(self.trial_id, step, float(value), plain)
        self.last = item
        if self._send(item):
            self.pruned = True
            raise TrialPruned(
                f"trial {self.trial_id} was pruned at step {step} (value {float(value):.4g})"
            )

    def end(self) -> None:
        """Marks the trial ended: later reports raise."""
        self._ended = True


def _plain_number(value: Any) -> Any:
    """Torch and numpy scalars as Python numbers; anything else unchanged."""
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", 1) == 0:
        return item()
    if isinstance(value, Mapping):
        return {str(k): _plain_number(v) for k, v in value.items()}
    return value


_CURRENT = threading.local()


def current_trial() -> TrialContext | None:
    """The trial this thread's evaluator runs for, or None outside a search.

    Example:
        >>> current_trial() is None
        True
    """
    return getattr(_CURRENT, "context", None)


def report(step: float, value: float, **metrics: Any) -> None:
    """Reports an intermediate ``value`` (higher is better) of the running trial at ``step``.

    Returns when the trial may go on; raises :class:`TrialPruned` when the search's
    pruner stops it (see the module docstring).

    Raises:
        TrialPruned: When the trial must stop.
        RuntimeError: Outside a running trial (no search, or after the trial ended).

    Example:
        >>> try:
        ...     report(1, 0.5)
        ... except RuntimeError as e:
        ...     print(str(e).split(",")[0])
        `report` must be called while a trial runs (inside an evaluator of sn.search)
    """
    context = current_trial()
    if context is None:
        raise RuntimeError(
            "`report` must be called while a trial runs (inside an evaluator of sn.search), "
            "but no trial is running"
        )
    context.report(step, value, **metrics)


@contextlib.contextmanager
def reporting(context: TrialContext) -> Iterator[TrialContext]:
    """Makes ``context`` this thread's :func:`current_trial` for the block, then ends it."""
    previous = current_trial()
    _CURRENT.context = context
    try:
        yield context
    finally:
        context.end()
        _CURRENT.context = previous
