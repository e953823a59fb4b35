"""The controller's hyperparameters: one dataclass, declared and validated once.

:class:`ControllerConfig` holds the settings ``reinforce`` and ``ppo`` share (the
LSTM, the optimiser, the baseline, the reward memory); :class:`ReinforceConfig`
and :class:`PPOConfig` add their own. Each field is declared once, with its
default and its constraints (:mod:`symbolic_nas.validation`); a config checks
itself when it is made, and the algorithms' ``_parameter_constraints`` are read
from these declarations.

Example:
    >>> from symbolic_nas.algorithms.controller import PPOConfig, ReinforceConfig
    >>> ReinforceConfig().batch_size
    8
    >>> ReinforceConfig.from_preset("zoph_le_2017", batch_size=16).learning_rate
    0.0006
    >>> PPOConfig(clip=0)
    Traceback (most recent call last):
    ...
    symbolic_nas.validation.InvalidParameterError: `clip` must be a number in (0, inf), but got 0
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

from symbolic_nas.algorithms._predictor import ACQUISITION_CONSTRAINTS
from symbolic_nas.validation import Interval, Options, check

__all__ = ["REWARD_TRANSFORMS", "ControllerConfig", "PPOConfig", "ReinforceConfig"]

#: Named reward transforms (the paper cubes the validation accuracy).
REWARD_TRANSFORMS: dict[str, Callable[[float], float]] = {
    "identity": lambda r: r,
    "cube": lambda r: r**3,
}

# Finite ranges: infinite learning rates, temperatures or weights are rejected.
_AT_LEAST_ONE = Interval(int, 1, None)
_POSITIVE = Interval(float, 0, math.inf, closed="neither")
_NON_NEGATIVE = Interval(float, 0, math.inf, closed="left")
_LEARNING_RATE = (_POSITIVE, Options(["auto"]))

_C = TypeVar("_C", bound="ControllerConfig")


def hyperparameter(default: Any, *constraints: Any) -> Any:
    """A config field: its default and the constraints of which any one must hold."""
    return dataclasses.field(default=default, metadata={"constraints": constraints})


@dataclasses.dataclass(frozen=True, kw_only=True)
class ControllerConfig:
    """Hyperparameters shared by the controller algorithms (defaults: the library's).

    The defaults are tuned for the 100-1,000 trials real searches run (explained in
    :mod:`~symbolic_nas.algorithms.controller.reinforce`; the evidence is in
    ``benchmarks/RESULTS.md``). A config validates
    itself when made; ``int`` values of float fields become floats.

    Attributes:
        hidden_size: LSTM units per layer (paper: 35).
        num_layers: Stacked LSTM layers (paper: 2).
        init_range: Uniform initialisation range (paper: 0.08).
        learning_rate: Adam's learning rate, or ``"auto"``: the algorithm's
            ``AUTO_LEARNING_RATE`` scaled to the budget.
        batch_size: Architectures per update (the paper's m).
        sample_batch: Architectures the controller samples per call (queued).
        baseline_decay: Decay of the moving-average baseline, in [0, 1).
        normalize_advantage: Divide advantages by their running RMS (scale-free).
        entropy_weight: Weight of the entropy bonus (>= 0).
        temperature: Logits are divided by it.
        tanh_constant: When > 0, logits become ``c * tanh(logits)``.
        skip_weight: Weight of the KL penalty pulling skip probabilities to
            ``skip_target`` (0 disables it).
        skip_target: Target skip rate of that penalty, in (0, 1).
        reward_transform: ``"identity"``, ``"cube"`` (the paper) or a callable.
        reward_memory: Answer already-rewarded architectures from memory and
            sample again (see :mod:`~symbolic_nas.algorithms.controller.search`).
        max_staleness: Feedback from policies more updates old than this is
            dropped from the gradient.
        predictor: Screen the controller's samples with a performance
            predictor (see :mod:`~symbolic_nas.algorithms.controller.search`):
            of ``predictor_candidates`` samples, only the most promising is
            proposed.
        predictor_candidates: Samples screened per proposal (at least 2).
        predictor_warmup: Rewarded architectures before the predictor screens
            (at least 2); until then proposals are the controller's own.
        predictor_refit: New rewards that trigger a refit of the predictor.
        predictor_acquisition: ``"its"`` (independent Thompson sampling over the
            predictor ensemble) or ``"mean"`` (its mean).
        predicted_rewards: Screened-out samples per proposal (the best predicted)
            that the controller also learns from, with their predicted reward as
            the reward (0: it learns from real rewards only).

    Example:
        >>> from symbolic_nas.algorithms.controller import ControllerConfig
        >>> ControllerConfig(learning_rate=1).learning_rate
        1.0
        >>> ControllerConfig(baseline_decay=1.0)
        Traceback (most recent call last):
        ...
        symbolic_nas.validation.InvalidParameterError: `baseline_decay` must be a number in [0, 1), but got 1.0
    """  # noqa: E501

    #: Named presets: partial settings that override the defaults.
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}

    hidden_size: int = hyperparameter(35, _AT_LEAST_ONE)
    num_layers: int = hyperparameter(2, _AT_LEAST_ONE)
    init_range: float = hyperparameter(0.08, _POSITIVE)
    learning_rate: float | str = hyperparameter("auto", *_LEARNING_RATE)
    batch_size: int = hyperparameter(8, _AT_LEAST_ONE)
    sample_batch: int = hyperparameter(8, _AT_LEAST_ONE)
    baseline_decay: float = hyperparameter(0.9, Interval(float, 0, 1, closed="left"))
    normalize_advantage: bool = hyperparameter(True, "boolean")
    entropy_weight: float = hyperparameter(0.0, _NON_NEGATIVE)
    temperature: float = hyperparameter(1.0, _POSITIVE)
    tanh_constant: float = hyperparameter(2.5, _NON_NEGATIVE)
    skip_weight: float = hyperparameter(0.0, _NON_NEGATIVE)
    skip_target: float = hyperparameter(0.4, Interval(float, 0, 1, closed="neither"))
    reward_transform: str | Callable[[float], float] = hyperparameter(  # noqa: RUF009 (a field)
        "identity", Options(sorted(REWARD_TRANSFORMS)), "callable"
    )
    reward_memory: bool = hyperparameter(True, "boolean")
    max_staleness: int = hyperparameter(8, Interval(int, 0, None))
    predictor: bool = hyperparameter(True, "boolean")
    predictor_candidates: int = hyperparameter(64, Interval(int, 2, None))
    predictor_warmup: int = hyperparameter(10, Interval(int, 2, None))
    predictor_refit: int = hyperparameter(8, _AT_LEAST_ONE)
    predictor_acquisition: str = hyperparameter("its", *ACQUISITION_CONSTRAINTS)
    predicted_rewards: int = hyperparameter(0, Interval(int, 0, None))

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            constraints = field.metadata["constraints"]
            value = check(field.name, getattr(self, field.name), constraints)
            object.__setattr__(self, field.name, _normalized(value, constraints))

    @classmethod
    def constraints(cls) -> dict[str, list[Any]]:
        """Field name -> its declared constraints (any one must hold).

        Example:
            >>> from symbolic_nas.algorithms.controller import ControllerConfig
            >>> from symbolic_nas.validation import describe
            >>> describe(ControllerConfig.constraints()["learning_rate"])
            "a number in (0, inf) or 'auto'"
        """
        return {f.name: list(f.metadata["constraints"]) for f in dataclasses.fields(cls)}

    @classmethod
    def preset_constraints(cls) -> list[Any]:
        """The constraints of a preset name: None, or one of :attr:`PRESETS` when any.

        Example:
            >>> from symbolic_nas.algorithms.controller import PPOConfig, ReinforceConfig
            >>> from symbolic_nas.validation import describe
            >>> describe(ReinforceConfig.preset_constraints())
            "None or 'zoph_le_2017'"
            >>> describe(PPOConfig.preset_constraints())
            'None'
        """
        return [None, *([Options(sorted(cls.PRESETS))] if cls.PRESETS else [])]

    @classmethod
    def from_preset(cls: type[_C], preset: str | None = None, **values: Any) -> _C:
        """The defaults, overridden by the preset's settings, overridden by ``values``.

        Raises:
            InvalidParameterError: ``preset`` is not None or one of :attr:`PRESETS`, or
                a value breaks its constraints.
            TypeError: A name in ``values`` is not a field of this config.
        """
        check("preset", preset, cls.preset_constraints())
        base = cls(**cls.PRESETS[preset]) if preset is not None else cls()
        return base.override(**values)

    def override(self: _C, **values: Any) -> _C:
        """A copy with ``values`` in place of this config's (validated).

        Raises:
            InvalidParameterError: A value breaks its constraints.
            TypeError: A name in ``values`` is not a field of this config.

        Example:
            >>> from symbolic_nas.algorithms.controller import PPOConfig
            >>> PPOConfig().override(epochs=2).epochs
            2
        """
        names = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise TypeError(
                f"{type(self).__name__} has no hyperparameter {', '.join(map(repr, unknown))}; "
                f"its hyperparameters are {names}"
            )
        return dataclasses.replace(self, **values) if values else self

    @property
    def reward_function(self) -> Callable[[float], float]:
        """The reward transform as a function."""
        transform = self.reward_transform
        return REWARD_TRANSFORMS[transform] if isinstance(transform, str) else transform

    def settings(self) -> dict[str, Any]:
        """Field name -> value (the transform as given: a name or the callable)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReinforceConfig(ControllerConfig):
    """``reinforce``'s hyperparameters: :class:`ControllerConfig`'s and the cap below.

    ``preset="zoph_le_2017"`` gives the paper's settings (lr 6e-4, m = 8, accuracy
    cubed, no entropy bonus, raw advantages), which need thousands of trials to
    move the policy. The paper gives no baseline decay: 0.99 is the ENAS
    reference scripts' value.

    Attributes:
        max_importance_weight: Cap of the importance weight of stale samples.
    """

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "zoph_le_2017": {
            "hidden_size": 35,
            "num_layers": 2,
            "init_range": 0.08,
            "learning_rate": 6e-4,
            "batch_size": 8,
            "sample_batch": 8,
            "baseline_decay": 0.99,
            "normalize_advantage": False,
            "entropy_weight": 0.0,
            "temperature": 1.0,
            "tanh_constant": 0.0,
            "reward_transform": "cube",
            "reward_memory": False,
            "predictor": False,
        },
    }

    max_importance_weight: float = hyperparameter(1.0, _POSITIVE)


@dataclasses.dataclass(frozen=True, kw_only=True)
class PPOConfig(ControllerConfig):
    """``ppo``'s hyperparameters: :class:`ControllerConfig`'s (Adam's rate 0.003 by
    default) and the two below.

    Attributes:
        epochs: Adam steps per batch.
        clip: PPO's clipping range ε (> 0).
    """

    learning_rate: float | str = hyperparameter(0.003, *_LEARNING_RATE)
    epochs: int = hyperparameter(4, _AT_LEAST_ONE)
    clip: float = hyperparameter(0.2, _POSITIVE)


def _normalized(value: Any, constraints: Sequence[Any]) -> Any:
    """Plain Python numbers: ints of float fields become floats (as the
    hand-written checks did), numpy integers of int fields become ints."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return value
    kinds = {c.kind for c in constraints if isinstance(c, Interval) and c.is_satisfied_by(value)}
    if float in kinds:
        return float(value)
    if int in kinds and isinstance(value, numbers.Integral):
        return int(value)
    return value
