"""Several objectives: metrics stay metrics, the tuner turns them into the reward.

``sn.search(..., objectives={"accuracy": "max", "latency": "min"})`` names the
metrics the evaluator returns (in its dict) and whether each is maximised or
minimised. The reward a token learner needs comes from a *scalarisation*:

* ``None`` (default): the first objective (negated when it is minimised);
* :class:`MnasNetReward`: ``acc × (lat / T) ** w`` (Tan et al., CVPR 2019);
* :class:`TuNASReward`: ``acc + β·|lat / T − 1|`` (Bender et al., CVPR 2020).

Hard constraints (``constraints={"latency": T}``: a minimised objective must be
at most ``T``, a maximised one at least ``T``) make a trial that breaks one
*infeasible*: its metrics get ``"feasible": False`` and the algorithm is told
``infeasible_reward``. A multi-objective algorithm (``nsga2``) also receives the
objective vector of every feasible trial (``feedback(..., objectives=[...])``,
every entry maximised), journaled with the trial's end so resume replays it.

An objective the evaluator does not return stops the search at the first trial
that lacks it (:class:`ObjectiveMissingError`), before any algorithm hears of it.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from symbolic_nas.tuner.evaluation import normalize_result
from symbolic_nas.tuner.evaluators import input_of
from symbolic_nas.validation import InvalidParameterError

__all__ = [
    "DIRECTIONS",
    "MnasNetReward",
    "ObjectiveEvaluator",
    "ObjectiveMissingError",
    "Objectives",
    "Scalarization",
    "TuNASReward",
    "objective_vector",
    "with_objectives",
]

DIRECTIONS = ("max", "min")


class ObjectiveMissingError(ValueError):
    """The evaluator did not return an objective named in ``objectives``."""


def _finite(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _positive(name: str, value: Any) -> float:
    if not _finite(value) or value <= 0:
        raise InvalidParameterError(f"`{name}` must be a finite float > 0, but got {value!r}")
    return float(value)


class Scalarization:
    """Turns a trial's objective metrics into one reward (subclass and implement ``__call__``)."""

    def bind(self, directions: Mapping[str, str]) -> Scalarization:
        """This scalarisation with its metric names checked against ``directions``."""
        return self

    def __call__(self, metrics: Mapping[str, float]) -> float:
        raise NotImplementedError


_Reward = TypeVar("_Reward", "MnasNetReward", "TuNASReward")


def _bind_names(reward: _Reward, directions: Mapping[str, str]) -> _Reward:
    """``reward`` with its accuracy (maximised) and cost (minimised) metric names bound."""
    return dataclasses.replace(
        reward,
        accuracy=_pick(directions, reward.accuracy, "max", "accuracy"),
        cost=_pick(directions, reward.cost, "min", "cost"),
    )


def _pick(directions: Mapping[str, str], name: str | None, direction: str, role: str) -> str:
    if name is not None:
        if directions.get(name) != direction:
            raise InvalidParameterError(
                f"`{role}` must name an objective with direction {direction!r}, but got "
                f"{name!r} (objectives: {dict(directions)})"
            )
        return name
    found = [n for n, d in directions.items() if d == direction]
    if len(found) != 1:
        raise InvalidParameterError(
            f"`{role}` must be given when the objectives do not have exactly one {direction!r} "
            f"objective, but got {role}=None with objectives {dict(directions)}"
        )
    return found[0]


@dataclasses.dataclass(frozen=True)
class MnasNetReward(Scalarization):
    """MnasNet's reward ``ACC × (LAT / T) ** w``, ``w = alpha`` if ``LAT ≤ T`` else ``beta``.

    Reference: M. Tan et al., "MnasNet: Platform-Aware Neural Architecture Search
    for Mobile", CVPR 2019. The paper's soft constraint is ``alpha = beta = -0.07``
    (the default); its hard constraint ``alpha = 0, beta = -1``.

    Args:
        target: The target cost ``T`` (> 0), in the cost metric's unit.
        alpha: The exponent when the cost is at most ``T``.
        beta: The exponent above ``T``.
        accuracy: The maximised objective (None: the only ``"max"`` one).
        cost: The minimised objective, > 0 (None: the only ``"min"`` one).

    Example:
        >>> reward = MnasNetReward(target=2.0).bind({"acc": "max", "lat": "min"})
        >>> round(reward({"acc": 0.9, "lat": 4.0}), 4)
        0.8574
    """

    target: float
    alpha: float = -0.07
    beta: float = -0.07
    accuracy: str | None = None
    cost: str | None = None

    def bind(self, directions: Mapping[str, str]) -> MnasNetReward:
        _positive("target", self.target)
        for name in ("alpha", "beta"):
            if not _finite(getattr(self, name)):
                raise InvalidParameterError(
                    f"`{name}` must be a finite float, but got {getattr(self, name)!r}"
                )
        return _bind_names(self, directions)

    def __call__(self, metrics: Mapping[str, float]) -> float:
        assert self.accuracy is not None and self.cost is not None  # bound
        cost = metrics[self.cost]
        if cost <= 0:
            raise ValueError(
                f"the cost `{self.cost}` must be > 0 for MnasNet's reward, but got {cost!r}"
            )
        w = self.alpha if cost <= self.target else self.beta
        return float(metrics[self.accuracy] * (cost / self.target) ** w)


@dataclasses.dataclass(frozen=True)
class TuNASReward(Scalarization):
    """TuNAS's absolute reward ``ACC + β·|COST / T − 1|`` (β < 0).

    Reference: G. Bender et al., "Can Weight Sharing Outperform Random
    Architecture Search? An Investigation With TuNAS", CVPR 2020. Unlike
    MnasNet's product, a model cheaper than ``T`` is penalised as well, which
    keeps the search near the target.

    Args:
        target: The target cost ``T`` (> 0).
        beta: The penalty weight, < 0 (the scale of the accuracy: -0.07 suits
            accuracies in [0, 1]; multiply it by 100 for percentages).
        accuracy: The maximised objective (None: the only ``"max"`` one).
        cost: The minimised objective (None: the only ``"min"`` one).

    Example:
        >>> reward = TuNASReward(target=2.0, beta=-0.1).bind({"acc": "max", "lat": "min"})
        >>> round(reward({"acc": 0.9, "lat": 3.0}), 4)
        0.85
    """

    target: float
    beta: float = -0.07
    accuracy: str | None = None
    cost: str | None = None

    def bind(self, directions: Mapping[str, str]) -> TuNASReward:
        _positive("target", self.target)
        if not _finite(self.beta) or self.beta >= 0:
            raise InvalidParameterError(f"`beta` must be a finite float < 0, but got {self.beta!r}")
        return _bind_names(self, directions)

    def __call__(self, metrics: Mapping[str, float]) -> float:
        assert self.accuracy is not None and self.cost is not None  # bound
        ratio = metrics[self.cost] / self.target
        return float(metrics[self.accuracy] + self.beta * abs(ratio - 1.0))


class _First(Scalarization):
    """The first objective, negated when it is minimised."""

    def __init__(self, directions: Mapping[str, str]) -> None:
        self.name, direction = next(iter(directions.items()))
        self.sign = 1.0 if direction == "max" else -1.0

    def __call__(self, metrics: Mapping[str, float]) -> float:
        return self.sign * float(metrics[self.name])


class Objectives:
    """The validated objective settings of a search.

    Args:
        directions: ``{metric: "max" | "min"}``, in order (the first is the default reward).
        scalarization: How the reward is made: None (the first objective), a
            :class:`Scalarization` (:class:`MnasNetReward`, :class:`TuNASReward`).
        constraints: ``{objective: bound}``: at most ``bound`` for a minimised
            objective, at least for a maximised one.
        infeasible_reward: The reward of a trial that breaks a constraint (finite).

    Example:
        >>> o = Objectives({"acc": "max", "lat": "min"}, constraints={"lat": 3.0})
        >>> o.vector({"acc": 0.9, "lat": 2.0}), o.feasible({"acc": 0.9, "lat": 4.0})
        ([0.9, -2.0], False)
        >>> o.reward({"acc": 0.9, "lat": 2.0}), o.reward({"acc": 0.9, "lat": 4.0})
        (0.9, 0.0)
    """

    def __init__(
        self,
        directions: Any,
        scalarization: Any = None,
        constraints: Any = None,
        infeasible_reward: Any = 0.0,
    ) -> None:
        if (
            not isinstance(directions, Mapping)
            or not directions
            or not all(isinstance(k, str) and k and k != "reward" for k in directions)
            or not all(d in DIRECTIONS for d in directions.values())
        ):
            raise InvalidParameterError(
                "`objectives` must be a non-empty dict of metric names (not 'reward') to 'max' "
                f"or 'min', e.g. {{'accuracy': 'max', 'latency': 'min'}}, but got {directions!r}"
            )
        self.directions: dict[str, str] = dict(directions)
        if scalarization is None:
            self.scalarization: Scalarization = _First(self.directions)
        elif isinstance(scalarization, Scalarization):
            self.scalarization = scalarization.bind(self.directions)
        else:
            raise InvalidParameterError(
                "`scalarization` must be None, sn.MnasNetReward(...) or sn.TuNASReward(...) (a "
                f"Scalarization), but got {scalarization!r}"
            )
        constraints = {} if constraints is None else constraints
        if not isinstance(constraints, Mapping) or not all(
            k in self.directions and _finite(v) for k, v in constraints.items()
        ):
            raise InvalidParameterError(
                "`constraints` must be a dict of objective names "
                f"{list(self.directions)} to finite bounds, but got {constraints!r}"
            )
        self.constraints = {k: float(v) for k, v in constraints.items()}
        if not _finite(infeasible_reward):
            raise InvalidParameterError(
                f"`infeasible_reward` must be a finite float, but got {infeasible_reward!r}"
            )
        self.infeasible_reward = float(infeasible_reward)

    @property
    def names(self) -> list[str]:
        return list(self.directions)

    def to_config(self) -> dict[str, Any]:
        """JSON-able settings for the run's config."""
        return {
            "directions": dict(self.directions),
            "order": self.names,  # dicts compare equal in any order; the first is the reward
            "scalarization": repr(self.scalarization)
            if not isinstance(self.scalarization, _First)
            else None,
            "constraints": dict(self.constraints),
            "infeasible_reward": self.infeasible_reward,
        }

    def missing(self, metrics: Mapping[str, Any]) -> list[str]:
        """The objectives that ``metrics`` lacks."""
        return [name for name in self.directions if name not in metrics]

    def vector(self, metrics: Mapping[str, Any]) -> list[float]:
        """The objective values, each oriented so that larger is better."""
        return [
            float(metrics[n]) if d == "max" else -float(metrics[n])
            for n, d in self.directions.items()
        ]

    def feasible(self, metrics: Mapping[str, Any]) -> bool:
        """Whether ``metrics`` meets every constraint."""
        for name, bound in self.constraints.items():
            value = float(metrics[name])
            if (value > bound) if self.directions[name] == "min" else (value < bound):
                return False
        return True

    def reward(self, metrics: Mapping[str, Any]) -> float:
        """The scalar reward: ``infeasible_reward`` or the scalarisation's."""
        if not self.feasible(metrics):
            return self.infeasible_reward
        return float(self.scalarization({n: float(metrics[n]) for n in self.directions}))


class ObjectiveEvaluator:
    """Wraps an evaluator so that its returned objectives become the reward (in the worker).

    The evaluator must return a dict holding every objective (a finite number); a
    ``"reward"`` it returns is replaced by the scalarised one. The wrapper takes
    the same input (model, tokens or DNA) as the evaluator.

    Raises (from ``__call__``):
        ObjectiveMissingError: An objective is missing (the tuner then stops the search).
        ValueError: An objective is not a finite number (the trial fails).

    Example:
        >>> o = Objectives({"acc": "max", "lat": "min"})
        >>> ObjectiveEvaluator(lambda m: {"acc": 0.5, "lat": 2}, o)(None)
        {'acc': 0.5, 'lat': 2, 'reward': 0.5}
    """

    def __init__(self, evaluate: Callable[[Any], Any], objectives: Objectives) -> None:
        self.evaluate = evaluate
        self.objectives = objectives
        self.sn_input = input_of(evaluate)

    def __call__(self, argument: Any) -> dict[str, Any]:
        value = self.evaluate(argument)
        if not isinstance(value, Mapping):
            raise ObjectiveMissingError(
                f"`evaluate` must return a dict with the objectives "
                f"{self.objectives.names}, but got {_short(value)}"
            )
        _, metrics = normalize_result({"reward": 0.0, **value})
        metrics.pop("reward")
        missing = self.objectives.missing(metrics)
        if missing:
            raise ObjectiveMissingError(
                f"`objectives` must name metrics the evaluator returns, but {missing} "
                f"{'is' if len(missing) == 1 else 'are'} not among its metrics "
                f"{sorted(metrics)}"
            )
        for name in self.objectives.names:
            if not _finite(metrics[name]):
                raise ValueError(
                    f"objective `{name}` must be a finite number, but got {metrics[name]!r}"
                )
        out = dict(metrics)
        if self.objectives.constraints:
            out["feasible"] = self.objectives.feasible(metrics)
        out["reward"] = self.objectives.reward(metrics)
        return out


def with_objectives(
    evaluate: Callable[[Any], Any], objectives: Objectives | None
) -> Callable[[Any], Any]:
    """The evaluator the workers run: with objectives, one that makes the reward."""
    return evaluate if objectives is None else ObjectiveEvaluator(evaluate, objectives)


def objective_vector(
    objectives: Objectives | None, metrics: Mapping[str, Any]
) -> list[float] | None:
    """What a multi-objective algorithm is told besides the reward of a completed trial:
    its objective vector, or None (no objectives, or an infeasible trial)."""
    if objectives is None or metrics.get("feasible", True) is False:
        return None
    return objectives.vector(metrics)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
