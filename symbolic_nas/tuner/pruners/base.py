"""The pruner interface and its registry: stopping rules that end poor trials early.

A pruner sees the intermediate reports of every trial (trial id, step, value;
higher values are better) and answers each with "go on" or "stop". It lives in the
driver, between the evaluators' reports and the algorithm (see
:mod:`symbolic_nas.tuner.pruning`), and never sees a model. Its state is a pure
function of the reports and trial ends it was told, in order, so the tuner rebuilds
it on resume by telling it the journal again; no checkpoint is needed.

Pruners are registered by name like algorithms: ``sn.search(..., pruner="asha")``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar

from symbolic_nas.registry import Registry
from symbolic_nas.validation import InvalidParameterError, validate_params

__all__ = ["Pruner", "available", "get", "register"]


class Pruner(abc.ABC):
    """A stopping rule for trials (see the module docstring).

    Subclasses declare ``_parameter_constraints`` for their keyword-only
    hyperparameters (checked by :meth:`_validate`) and implement :meth:`_decide`.

    Example:
        >>> class Never(Pruner):
        ...     name = "never"
        ...     def _decide(self, trial_id, step, value):
        ...         return False
        >>> Never().report(0, 1, 0.5), Never().budget(0)
        (False, None)
    """

    #: The registered name.
    name: ClassVar[str] = ""
    #: Declared constraints of the keyword-only hyperparameters.
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {}

    def __init__(self) -> None:
        self.curves: dict[int, dict[float, float]] = {}  # trial -> step -> value
        self.completed: list[int] = []  # Completed trials, in finishing order.
        self.ended: set[int] = set()

    def _validate(self, values: dict[str, Any]) -> None:
        validate_params(self._parameter_constraints, values)

    def report(self, trial_id: int, step: float, value: float) -> bool:
        """Records ``value`` of ``trial_id`` at ``step``; True when the trial must stop.

        Recording the same step of a trial again (a re-run attempt) overwrites it.
        """
        self.curves.setdefault(trial_id, {})[step] = float(value)
        return bool(self._decide(trial_id, step, float(value)))

    def finish(self, trial_id: int, status: str) -> None:
        """Tells the pruner a trial ended (``"completed"``, ``"pruned"`` or ``"failed"``)."""
        if trial_id in self.ended:
            return
        self.ended.add(trial_id)
        if status == "completed":
            self.completed.append(trial_id)

    def budget(self, trial_id: int) -> float | None:
        """The resource (epochs) the schedule gives a new trial; None: the evaluator's own."""
        del trial_id
        return None

    def fresh(self) -> Pruner:
        """A new pruner with the same hyperparameters and no state (each search starts
        one, and rebuilds it from the journal on resume)."""
        return type(self)(**{k: getattr(self, k) for k in self._parameter_constraints})

    def settings(self) -> dict[str, Any]:
        """The pruner's name and hyperparameters, as journaled and shown."""
        return {"name": self.name, **{k: getattr(self, k) for k in self._parameter_constraints}}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._parameter_constraints)
        return f"{type(self).__name__}({args})"

    @abc.abstractmethod
    def _decide(self, trial_id: int, step: float, value: float) -> bool:
        """Whether ``trial_id`` must stop after reporting ``value`` at ``step`` (recorded)."""


_REGISTRY: Registry[type[Pruner]] = Registry("pruner")


def register(name: str) -> Callable[[type[Pruner]], type[Pruner]]:
    """Class decorator adding a pruner to the registry under ``name`` (its ``name``)."""
    add = _REGISTRY.register(name)

    def decorate(cls: type[Pruner]) -> type[Pruner]:
        cls.name = name
        return add(cls)

    return decorate


def get(name: str | Pruner, **kwargs: Any) -> Pruner:
    """The pruner registered as ``name`` built with ``kwargs``, or ``name`` if it is one.

    Raises:
        InvalidParameterError: If no pruner has that name, or keyword arguments are
            given with an instance.

    Example:
        >>> get("median").name, get("asha", reduction_factor=4).reduction_factor
        ('median', 4)
    """
    if isinstance(name, Pruner):
        if kwargs:
            raise InvalidParameterError(
                f"`pruner` must be a name when keyword arguments are given, but got an "
                f"instance ({name!r}) and {sorted(kwargs)}"
            )
        return name
    return _REGISTRY.lookup(name)(**kwargs)


def available() -> list[str]:
    """The registered pruner names, sorted."""
    return _REGISTRY.available()
