"""PPO on the Zoph & Le controller (Schulman et al. 2017).

J. Schulman, F. Wolski, P. Dhariwal, A. Radford and O. Klimov, "Proximal Policy
Optimization Algorithms", arXiv:1707.06347, 2017. Zoph et al. ("Learning
Transferable Architectures for Scalable Image Recognition", CVPR 2018) trained
their NAS controller this way.

The same controller, queue, baseline, advantage and memory as ``reinforce``
(:mod:`~symbolic_nas.algorithms.controller.search`); only the update differs:
each batch of ``batch_size`` samples is used for ``epochs`` Adam steps on the
clipped surrogate::

    L = -mean_k min(ρ_k A_k, clip(ρ_k, 1 - ε, 1 + ε) A_k) - entropy_weight · mean H

with ``ρ_k = π_θ(a_k) / π_then(a_k)`` and ``π_then`` the policy that produced the
sample (its recorded log-probability). Stale samples need no other correction:
the ratio is already taken against the policy that produced them; samples more
than ``max_staleness`` updates old are dropped. There is no value network: the
advantage comes from the moving-average baseline, as for ``reinforce``.

Defaults: m = 8, 4 epochs, clip 0.2, Adam lr 0.003, ``tanh_constant=2.5`` and the
reward memory, chosen on NAS-Bench-201 with ``benchmarks/tune_reinforce.py
--algorithm ppo`` against other learning rates and epoch counts; the figures are in
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from symbolic_nas.algorithms.base import register
from symbolic_nas.algorithms.controller.config import PPOConfig
from symbolic_nas.algorithms.controller.memory import Sample
from symbolic_nas.algorithms.controller.search import ControllerSearch

__all__ = ["PPO"]


@register("ppo")
class PPO(ControllerSearch):
    """Clipped-objective PPO over the LSTM controller.

    Reference: J. Schulman et al., "Proximal Policy Optimization Algorithms",
    arXiv:1707.06347, 2017.

    The hyperparameters are the fields of
    :class:`~symbolic_nas.algorithms.controller.config.PPOConfig`, given as
    keywords; those shared with ``reinforce`` mean the same there. Those left out
    (or given as None) take the defaults (chosen on NAS-Bench-201; see the
    module docs).

    Args:
        seed: Seed of the algorithm's RNGs.
        preset: None (PPO has no presets).
        config: A whole :class:`PPOConfig` to start from instead.
        **hyperparameters: Fields of ``PPOConfig``, e.g. ``epochs=8``.

    Example:
        >>> import symbolic_nas as sn
        >>> from symbolic_nas import algorithms
        >>> from symbolic_nas.algorithms.controller import PPOConfig
        >>> codec = sn.encode({"op": sn.oneof(["conv", "pool"]), "k": sn.oneof([3, 5, 7])})
        >>> algo = algorithms.get("ppo", seed=0, config=PPOConfig(batch_size=2, epochs=2))
        >>> algo.setup(codec)
        >>> for _ in range(6):
        ...     p = algo.propose()
        ...     algo.feedback(p, float(p.tokens[1]))   # favours k = 7
        >>> algo.version, algo.epochs   # one update (of two Adam steps) per 2 rewards
        (3, 2)
    """

    config_class: ClassVar[type[PPOConfig]] = PPOConfig
    config: PPOConfig
    #: ``learning_rate="auto"``: 0.003 up to 300 trials, ``0.003 * 300 / budget`` beyond
    #: (by analogy with ``reinforce``; the default is the fixed 0.003).
    AUTO_LEARNING_RATE: ClassVar[tuple[float, int]] = (0.003, 300)

    def _step(self, samples: list[Sample], advantages: torch.Tensor) -> dict[str, float]:
        old = torch.tensor([s.log_prob for s in samples])
        clip = self.config.clip
        for _ in range(self.config.epochs):
            scores = self._score(samples)
            ratio = torch.exp(scores.log_prob - old)
            clipped = torch.clamp(ratio, 1 - clip, 1 + clip)
            surrogate = torch.minimum(ratio * advantages, clipped * advantages)
            loss = -surrogate.mean() + self._loss_terms(scores)
            self._optimize(loss)
        return {
            "loss": float(loss.detach()),
            "entropy": float(scores.entropy.detach().mean()),
            "skip_rate": float(scores.skip_rate.detach().mean()),
            "clip_fraction": float(((ratio - 1).abs() > clip).float().mean()),
        }
