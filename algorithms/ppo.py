"""PPO on the Zoph & Le controller (Schulman et al. 2017).

J. Schulman, F. Wolski, P. Dhariwal, A. Radford and O. Klimov, "Proximal Policy
Optimization Algorithms", arXiv:1707.06347, 2017. Zoph et al. ("Learning
Transferable Architectures for Scalable Image Recognition", CVPR 2018) trained
their NAS controller this way.

The same controller, queue, baseline, advantage and memory as ``reinforce``
(:mod:`~symbolic_nas.algorithms.controller_search`); only the update differs:
each batch of ``batch_size`` samples is used for ``epochs`` Adam steps on the
clipped surrogate::

    L = -mean_k min(ρ_k A_k, clip(ρ_k, 1 - ε, 1 + ε) A_k) - entropy_weight · mean H

with ``ρ_k = π_θ(a_k) / π_then(a_k)`` and ``π_then`` the policy that produced the
sample (its recorded log-probability). Stale samples need no other correction:
the ratio is already taken against the policy that produced them; samples more
than ``max_staleness`` updates old are dropped. There is no value network: the
advantage comes from the moving-average baseline, as for ``reinforce``.

Defaults (m = 8, 4 epochs, clip 0.2, Adam lr 0.003, ``tanh_constant=2.5``, the
reward memory) measured on NAS-Bench-201 with ``benchmarks/tune_reinforce.py
--algorithm ppo`` (30 seeds, budget 300; test accuracy of the best-so-far by
``c10valid_val_12``): 93.82 ± 0.46 at 100 queries, 94.28 ± 0.21 at 300, optimum
proposed in 70 % of the runs (median 228 queries). lr 0.01: 93.89 ± 0.44 / 94.26 ±
0.22 (63 %); lr 0.003 with 8 epochs: 93.93 ± 0.39 / 94.28 ± 0.20 (77 %).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch

from symbolic_nas.algorithms.base import register
from symbolic_nas.algorithms.controller_params import (
    check_int,
    check_number,
    resolve_hyperparameters,
)
from symbolic_nas.algorithms.controller_search import ControllerSearch

__all__ = ["PPO"]


@register("ppo")
class PPO(ControllerSearch):
    """Clipped-objective PPO over the LSTM controller.

    Reference: J. Schulman et al., "Proximal Policy Optimization Algorithms",
    arXiv:1707.06347, 2017.

    Hyperparameters left as None take the value of :attr:`DEFAULTS`. Those shared
    with ``reinforce`` mean the same there (see
    :class:`~symbolic_nas.algorithms.reinforce.Reinforce`).

    Args:
        seed: Seed of the algorithm's RNGs.
        hidden_size: LSTM units per layer.
        num_layers: Stacked LSTM layers.
        init_range: Uniform initialisation range.
        learning_rate: Adam's learning rate.
        batch_size: Architectures per batch.
        sample_batch: Architectures the controller samples per call (queued).
        epochs: Adam steps per batch.
        clip: PPO's clipping range ε (> 0).
        baseline_decay: Decay of the moving-average baseline.
        normalize_advantage: Divide advantages by their running RMS.
        entropy_weight: Weight of the entropy bonus.
        temperature: Logits are divided by it.
        tanh_constant: When > 0, logits become ``c * tanh(logits)``.
        skip_weight: Weight of the skip-rate KL penalty.
        skip_target: Target skip rate.
        reward_transform: ``"identity"``, ``"cube"`` or a callable.
        reward_memory: Answer already-rewarded architectures from memory.
        max_staleness: Older feedback is dropped from the gradient.

    Example:
        >>> import symbolic_nas as sn
        >>> from symbolic_nas import algorithms
        >>> codec = sn.encode([sn.oneof(["a", "b", "c"]) for _ in range(3)])
        >>> algo = algorithms.get("ppo", seed=0, batch_size=4)
        >>> algo.setup(codec, budget=12)
        >>> for _ in range(12):
        ...     p = algo.propose()
        ...     algo.feedback(p, float(p.tokens.count(2)))   # favours token 2
        >>> algo.version   # one update per 4 rewards
        3
    """

    #: ``learning_rate="auto"``: 0.003 up to 300 trials, ``0.003 * 300 / budget`` beyond
    #: (by analogy with ``reinforce``; the default is the fixed 0.003).
    AUTO_LEARNING_RATE: ClassVar[tuple[float, int]] = (0.003, 300)
    #: Library defaults (measured on NAS-Bench-201; see the module docs).
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "hidden_size": 35,
        "num_layers": 2,
        "init_range": 0.08,
        "learning_rate": 0.003,
        "batch_size": 8,
        "sample_batch": 8,
        "epochs": 4,
        "clip": 0.2,
        "baseline_decay": 0.9,
        "normalize_advantage": True,
        "entropy_weight": 0.0,
        "temperature": 1.0,
        "tanh_constant": 2.5,
        "skip_weight": 0.0,
        "skip_target": 0.4,
        "reward_transform": "identity",
        "reward_memory": True,
        "max_staleness": 8,
    }

    def __init__(
        self,
        *,
        seed: int | None = 0,
        hidden_size: int | None = None,
        num_layers: int | None = None,
        init_range: float | None = None,
        learning_rate: float | None = None,
        batch_size: int | None = None,
        sample_batch: int | None = None,
        epochs: int | None = None,
        clip: float | None = None,
        baseline_decay: float | None = None,
        normalize_advantage: bool | None = None,
        entropy_weight: float | None = None,
        temperature: float | None = None,
        tanh_constant: float | None = None,
        skip_weight: float | None = None,
        skip_target: float | None = None,
        reward_transform: str | Callable[[float], float] | None = None,
        reward_memory: bool | None = None,
        max_staleness: int | None = None,
    ):
        given = {
            "hidden_size": hidden_size,
            "num_layers": num_layers,
            "init_range": init_range,
            "learning_rate": learning_rate,
            "batch_size": batch_size,
            "sample_batch": sample_batch,
            "epochs": epochs,
            "clip": clip,
            "baseline_decay": baseline_decay,
            "normalize_advantage": normalize_advantage,
            "entropy_weight": entropy_weight,
            "temperature": temperature,
            "tanh_constant": tanh_constant,
            "skip_weight": skip_weight,
            "skip_target": skip_target,
            "reward_transform": reward_transform,
            "reward_memory": reward_memory,
            "max_staleness": max_staleness,
        }
        values = resolve_hyperparameters(None, {}, self.DEFAULTS, given)
        epochs_value, clip_value = values.pop("epochs"), values.pop("clip")
        check_int("epochs", epochs_value, 1)
        check_number("clip", clip_value, low=0, low_open=True)
        self.epochs = epochs_value
        self.clip = float(clip_value)
        super().__init__(seed=seed, **values)

    def _step(self, samples: list[dict[str, Any]], advantages: torch.Tensor) -> dict[str, float]:
        old = torch.tensor([s["log_prob"] for s in samples])
        for _ in range(self.epochs):
            scores = self._score(samples)
            ratio = torch.exp(scores.log_prob - old)
            clipped = torch.clamp(ratio, 1 - self.clip, 1 + self.clip)
            surrogate = torch.minimum(ratio * advantages, clipped * advantages)
            loss = -surrogate.mean() + self._loss_terms(scores)
            self._optimize(loss)
        return {
            "loss": float(loss.detach()),
            "entropy": float(scores.entropy.detach().mean()),
            "skip_rate": float(scores.skip_rate.detach().mean()),
            "clip_fraction": float(((ratio - 1).abs() > self.clip).float().mean()),
        }
