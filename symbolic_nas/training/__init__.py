"""Training layer: the built-in classification :class:`Trainer`, the shared-weight
:class:`WeightSharing` evaluator, reward functions and data.

Example:
    >>> from symbolic_nas.training import Trainer, final_accuracy
    >>> final_accuracy([0.5, 0.75])
    0.75
"""

from symbolic_nas.training.rewards import final_accuracy, zoph_le_reward
from symbolic_nas.training.trainer import TRIAL_HPARAMS, NonFiniteLossError, Trainer
from symbolic_nas.training.weight_sharing import WeightSharing

__all__ = [
    "TRIAL_HPARAMS",
    "NonFiniteLossError",
    "Trainer",
    "WeightSharing",
    "final_accuracy",
    "zoph_le_reward",
]
