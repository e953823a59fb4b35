"""The controller family: Zoph & Le's LSTM policy and the algorithms that train it.

* :mod:`~symbolic_nas.algorithms.controller.policy`: :class:`Controller`, the
  batched LSTM policy over a codec's decisions.
* :mod:`~symbolic_nas.algorithms.controller.config`: the hyperparameters as
  dataclasses (:class:`ControllerConfig`, :class:`ReinforceConfig`,
  :class:`PPOConfig`) with presets, declared and validated once.
* :mod:`~symbolic_nas.algorithms.controller.memory`: :class:`Sample`,
  :class:`RewardMemory` and the baseline's moments.
* :mod:`~symbolic_nas.algorithms.controller.search`: :class:`ControllerSearch`,
  the queue, baseline, advantages and memory shared by both algorithms.
* :mod:`~symbolic_nas.algorithms.controller.reinforce` (``"reinforce"``) and
  :mod:`~symbolic_nas.algorithms.controller.ppo` (``"ppo"``): the two updates.

Example:
    >>> from symbolic_nas import algorithms
    >>> from symbolic_nas.algorithms.controller import ReinforceConfig
    >>> config = ReinforceConfig.from_preset("zoph_le_2017", batch_size=16)
    >>> algo = algorithms.get("reinforce", seed=0, config=config)
    >>> algo.batch_size, algo.learning_rate, algo.reward_transform
    (16, 0.0006, 'cube')
"""

from symbolic_nas.algorithms.controller.config import (
    REWARD_TRANSFORMS,
    ControllerConfig,
    PPOConfig,
    ReinforceConfig,
)
from symbolic_nas.algorithms.controller.memory import RewardMemory, Sample
from symbolic_nas.algorithms.controller.policy import Controller, Scores
from symbolic_nas.algorithms.controller.ppo import PPO
from symbolic_nas.algorithms.controller.reinforce import Reinforce
from symbolic_nas.algorithms.controller.search import ControllerSearch, one_torch_thread

__all__ = [
    "PPO",
    "REWARD_TRANSFORMS",
    "Controller",
    "ControllerConfig",
    "ControllerSearch",
    "PPOConfig",
    "Reinforce",
    "ReinforceConfig",
    "RewardMemory",
    "Sample",
    "Scores",
    "one_torch_thread",
]
