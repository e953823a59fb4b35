"""Reward functions: a list of per-epoch validation accuracies in, one reward out."""

from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["REWARDS", "RewardFn", "final_accuracy", "zoph_le_reward"]

RewardFn = Callable[[Sequence[float]], float]


def final_accuracy(val_accuracies: Sequence[float]) -> float:
    """Reward: the validation accuracy after the last epoch.

    Args:
        val_accuracies: Validation accuracy (fraction in [0, 1]) after each epoch.

    Raises:
        ValueError: If ``val_accuracies`` is empty.

    Example:
        >>> final_accuracy([0.5, 0.75, 0.7])
        0.7
    """
    if len(val_accuracies) == 0:
        raise ValueError(f"`val_accuracies` must be non-empty, but got {val_accuracies!r}")
    return float(val_accuracies[-1])


def zoph_le_reward(val_accuracies: Sequence[float]) -> float:
    """Reward of Zoph & Le (2017): the best validation accuracy of the last 5 epochs, cubed.

    Args:
        val_accuracies: Validation accuracy (fraction in [0, 1]) after each epoch.

    Raises:
        ValueError: If ``val_accuracies`` is empty.

    Example:
        >>> zoph_le_reward([0.9, 0.5, 0.5, 0.5, 0.5, 0.5])
        0.125
    """
    if len(val_accuracies) == 0:
        raise ValueError(f"`val_accuracies` must be non-empty, but got {val_accuracies!r}")
    return float(max(val_accuracies[-5:])) ** 3


REWARDS: dict[str, RewardFn] = {"final_accuracy": final_accuracy, "zoph_le": zoph_le_reward}
