"""REINFORCE with an LSTM controller (Zoph & Le, ICLR 2017).

B. Zoph and Q. V. Le, "Neural Architecture Search with Reinforcement Learning",
ICLR 2017 (arXiv:1611.01578); the policy gradient is R. J. Williams, "Simple
statistical gradient-following algorithms for connectionist reinforcement
learning", Machine Learning 8, 1992.

The controller (:mod:`~symbolic_nas.algorithms.controller.policy`) samples token
sequences; each update follows the paper's estimator averaged over ``m``
architectures::

    ∇J ≈ (1/m) Σ_k w_k · A_k · Σ_t ∇ log P(a_t | a_<t)   +   entropy_weight · ∇ mean H

with ``A_k = R_k - b`` (divided by a running scale with ``normalize_advantage``),
``b`` the bias-corrected exponential moving average of earlier rewards, and
``w_k = 1`` for samples of the current policy. The entropy bonus is a separate,
differentiable term: it never enters the advantage, which is a constant. Stale
samples (policy version ``s`` updates old, ``0 < s <= max_staleness``) get the
truncated importance weight ``w_k = min(π_now(a) / π_then(a), max_importance_weight)``
(as V-trace, Espeholt et al. 2018); older ones are dropped from the gradient.

Defaults and evidence. With lr 6e-4 and m = 8 (the paper's settings, about 12,800
architectures in the paper) the policy barely moves in the 100-1,000 trials real
searches run. The defaults instead use m = 8 with Adam at ``learning_rate="auto"``
(0.02 up to a budget of 300 trials, ``0.02 * 300 / budget`` beyond, 0.02 without a
budget), ``tanh_constant=2.5`` (logits bounded, so the policy never collapses and
keeps proposing neighbours of its mode), advantages normalised by their running
RMS (identical runs whether rewards come in percent or as fractions), an EMA
baseline with decay 0.9 and the reward memory. The NAS-Bench-201 runs that chose
them (``benchmarks/tune_reinforce.py``: the defaults against the paper's settings,
without the memory, with rewards as fractions, and at budget 1,000) are in
``benchmarks/RESULTS.md``, with the full benchmark of every algorithm. The
``tanh_constant`` bound also limits how far one decision can concentrate when its
vocabulary is large (at most p = 0.6 over 101 tokens); set it higher, or to 0, for
such spaces.

Predictor screening (``predictor=True`` by default, off in the ``zoph_le_2017``
preset): of 64 samples of the current policy, a performance predictor fitted to
the rewards so far picks the one to evaluate; the policy gradient is unchanged
(:mod:`~symbolic_nas.algorithms.controller.search` describes it; the settings'
sweep is in ``benchmarks/RESULTS.md``). It raised the mean at 50 queries on
NAS-Bench-201 from 93.53 to 93.98 (12 seeds, budget 100) at a cost of a few
milliseconds per proposal.

Cost: ``benchmarks/overhead.py`` measures the per-trial overhead on 6, 30 and 100
decisions; the figures are in ``benchmarks/RESULTS-tuner.md``. The cost is set by
how many architectures share a torch call (``batch_size``, ``sample_batch``).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from symbolic_nas.algorithms.base import register
from symbolic_nas.algorithms.controller.config import ReinforceConfig
from symbolic_nas.algorithms.controller.memory import Sample
from symbolic_nas.algorithms.controller.search import ControllerSearch

__all__ = ["Reinforce"]


@register("reinforce")
class Reinforce(ControllerSearch):
    """REINFORCE over an LSTM controller, as in Zoph & Le (2017).

    Reference: B. Zoph and Q. V. Le, "Neural Architecture Search with
    Reinforcement Learning", ICLR 2017.

    The hyperparameters are the fields of
    :class:`~symbolic_nas.algorithms.controller.config.ReinforceConfig` (each
    documented there), given as keywords. Every hyperparameter left out (or given
    as None) takes the value of ``preset`` when one is given, else the library's
    default. The defaults are tuned for the 100-1,000 trials real searches run;
    ``preset="zoph_le_2017"`` gives the paper's settings (lr 6e-4, m = 8, accuracy
    cubed, no entropy bonus, raw advantages), which need thousands of trials to
    move the policy.

    Args:
        seed: Seed of the algorithm's RNGs (Python and torch generators of its own).
        preset: None or a name in ``ReinforceConfig.PRESETS``.
        config: A whole :class:`ReinforceConfig` to start from instead (no preset).
        **hyperparameters: Fields of ``ReinforceConfig``, e.g. ``batch_size=16``.

    Example:
        >>> import symbolic_nas as sn
        >>> from symbolic_nas import algorithms
        >>> codec = sn.encode([sn.oneof(["a", "b", "c"]) for _ in range(3)])
        >>> algo = algorithms.get("reinforce", seed=0, batch_size=4)
        >>> algo.setup(codec, budget=12)
        >>> for _ in range(12):
        ...     p = algo.propose()
        ...     algo.feedback(p, float(p.tokens.count(2)))   # favours token 2
        >>> algo.version   # one update per 4 rewards
        3
        >>> algorithms.get("reinforce", preset="zoph_le_2017").learning_rate
        0.0006
    """

    config_class: ClassVar[type[ReinforceConfig]] = ReinforceConfig
    config: ReinforceConfig
    #: ``learning_rate="auto"``: 0.02 up to 300 trials, ``0.02 * 300 / budget`` beyond.
    AUTO_LEARNING_RATE: ClassVar[tuple[float, int]] = (0.02, 300)

    def _step(self, samples: list[Sample], advantages: torch.Tensor) -> dict[str, float]:
        scores = self._score(samples)
        log_prob = scores.log_prob
        now = log_prob.detach()
        weights = torch.ones(len(samples))
        cap = self.config.max_importance_weight
        for i, s in enumerate(samples):
            if s.version != self._version:
                ratio = torch.exp(now[i] - s.log_prob).item()
                weights[i] = min(ratio, cap)
        loss = -(weights * advantages * log_prob).mean() + self._loss_terms(scores)
        self._optimize(loss)
        return {
            "loss": float(loss.detach()),
            "entropy": float(scores.entropy.detach().mean()),
            "skip_rate": float(scores.skip_rate.detach().mean()),
        }
