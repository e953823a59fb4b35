"""Training layer: the built-in classification :class:`Trainer`, reward functions and data.

Example:
    >>> from symbolic_nas.training import Trainer, final_accuracy
    >>> final_accuracy([0.5, 0.75])
    0.75
"""

from symbolic_nas.training.rewards import final_accuracy, zoph_le_reward
from symbolic_nas.training.trainer import TRIAL_HPARAMS, NonFiniteLossError, Trainer

__all__ = ["TRIAL_HPARAMS", "NonFiniteLossError", "Trainer", "final_accuracy", "zoph_le_reward"]
