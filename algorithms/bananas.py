"""BANANAS: a neural predictor ensemble guiding mutations (White, Neiswanger and Savani, AAAI 2021).

The algorithm starts with ``num_init`` uniformly random architectures. After
that, each proposal fits the predictor (:mod:`~symbolic_nas.algorithms._predictor`:
an ensemble of small MLPs on the codec's one-hot encoding, inactive decisions
masked) to every reward so far, makes ``num_candidates`` candidates by
mutating the ``num_parents`` best architectures
(:func:`~symbolic_nas.algorithms.mutation.mutate`: one decision changed, the
branch it opens drawn at random; every other candidate gets a second
mutation), drops those already evaluated or outstanding, and proposes the
candidate with the highest acquisition value: independent Thompson sampling by
default (one draw from a Gaussian with the ensemble's mean and spread per
candidate, BANANAS' choice), or the ensemble's mean.

Restarts (not in the paper): candidates come from the current *climb*'s
history. When ``patience`` rewards in a row have not improved the climb's
best, a new climb starts from a uniformly random architecture (as local
search restarts; a start picked by the predictor, which has learned the old
basin, tended to fall back into it), and its candidates then come from its own
results. Without them a search can
stay in the basin of a local optimum whose neighbours are all evaluated (on
NAS-Bench-201 about a fifth of the runs did; ``benchmarks/RESULTS.md``).

Differences from the paper: the encoding is the codec's one-hot tokens rather
than the path encoding of a cell, which needs a cell's graph (no space
declares one to the codec), so the algorithm works on every space; the
predictor is refitted from fresh weights every ``refit_every`` new rewards
(the paper refits per batch of ten), with two hidden layers of 32
units rather than ten of 20, which fits in milliseconds on one core.

Resume: the state is the history of rewards (not the weights); every fit
draws its initial weights from the seed and the history's length, so a
resumed run refits the same predictor and proposes the same architectures.

Failure policy: a failed proposal (``None``/NaN/inf reward) is never proposed
again and is not in the predictor's data. Outstanding proposals are never
proposed again while unseen candidates exist, so many workers get distinct
architectures.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from symbolic_nas.algorithms._predictor import ACQUISITION_CONSTRAINTS, EnsemblePredictor, Screen
from symbolic_nas.algorithms.base import Algorithm, Proposal, register
from symbolic_nas.algorithms.local_search import unseen_random
from symbolic_nas.algorithms.mutation import mutate, neighbours
from symbolic_nas.validation import Interval, validate_params

__all__ = ["Bananas"]


@register("bananas")
class Bananas(Algorithm):
    """BANANAS: predictor-guided mutation with independent Thompson sampling.

    Reference: C. White, W. Neiswanger and Y. Savani, "BANANAS: Bayesian
    Optimization with Neural Architectures for Neural Architecture Search",
    AAAI 2021 (arXiv:1910.11858).

    Defaults were chosen on NAS-Bench-201 CIFAR-10 with a small sweep
    (``benchmarks/RESULTS.md``, hand-written section).

    Args:
        num_init: Random architectures before the predictor guides (at least 2).
        num_candidates: Candidates scored per proposal.
        num_parents: Best architectures the candidates are mutated from.
        acquisition: ``"its"`` (independent Thompson sampling) or ``"mean"``.
        refit_every: New rewards that trigger a refit of the predictor (1: every
            one; BANANAS refits per batch of 10; long histories refit less often,
            see :class:`~symbolic_nas.algorithms._predictor.Screen`).
        patience: Rewards without improving the current climb's best before a
            restart (None: never restart).
        ensemble_size: Networks in the predictor ensemble.
        hidden_size: Units of each of their two hidden layers.
        steps: Full-batch Adam steps per fit.
        learning_rate: Adam's learning rate.
        seed: Seed of the algorithm's RNG and of the predictor's initialisation.

    Example:
        >>> import symbolic_nas as sn
        >>> from symbolic_nas import algorithms
        >>> codec = sn.encode([sn.oneof([0, 1, 2, 3]) for _ in range(4)])
        >>> algo = algorithms.get("bananas", num_init=5, seed=0)
        >>> algo.setup(codec, budget=30)
        >>> for _ in range(30):
        ...     p = algo.propose()
        ...     algo.feedback(p, float(sum(p.tokens)))
        >>> algo.best[1] >= 10
        True
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **Algorithm._parameter_constraints,
        "num_init": [Interval(int, 2, None)],
        "num_candidates": [Interval(int, 1, None)],
        "num_parents": [Interval(int, 1, None)],
        "acquisition": ACQUISITION_CONSTRAINTS,
        "refit_every": [Interval(int, 1, None)],
        "patience": [Interval(int, 1, None), None],
        **{
            k: v
            for k, v in EnsemblePredictor._parameter_constraints.items()
            if k in ("ensemble_size", "hidden_size", "steps", "learning_rate")
        },
    }

    def __init__(
        self,
        *,
        num_init: int = 10,
        num_candidates: int = 100,
        num_parents: int = 10,
        acquisition: str = "its",
        refit_every: int = 1,
        patience: int | None = 25,
        ensemble_size: int = 5,
        hidden_size: int = 32,
        steps: int = 50,
        learning_rate: float = 0.02,
        seed: int | None = 0,
    ):
        settings = {
            "num_init": num_init,
            "num_candidates": num_candidates,
            "num_parents": num_parents,
            "acquisition": acquisition,
            "refit_every": refit_every,
            "patience": patience,
            "ensemble_size": ensemble_size,
            "hidden_size": hidden_size,
            "steps": steps,
            "learning_rate": learning_rate,
        }
        validate_params(self._parameter_constraints, settings)
        super().__init__(seed=seed)
        self.num_init = num_init
        self.num_candidates = num_candidates
        self.num_parents = num_parents
        self.acquisition = acquisition
        self.refit_every = refit_every
        self.patience = patience
        self.ensemble_size = ensemble_size
        self.hidden_size = hidden_size
        self.steps = steps
        self.learning_rate = float(learning_rate)

    def _settings(self) -> dict[str, Any]:
        return {
            "num_init": self.num_init,
            "num_candidates": self.num_candidates,
            "num_parents": self.num_parents,
            "acquisition": self.acquisition,
            "refit_every": self.refit_every,
            "patience": self.patience,
            "ensemble_size": self.ensemble_size,
            "hidden_size": self.hidden_size,
            "steps": self.steps,
            "learning_rate": self.learning_rate,
        }

    def _setup(self) -> None:
        self._screen = Screen(
            self.codec,
            refit_every=self.refit_every,
            ensemble_size=self.ensemble_size,
            hidden_size=self.hidden_size,
            steps=self.steps,
            learning_rate=self.learning_rate,
            seed=self.seed,
        )
        self._history: list[tuple[tuple[int, ...], float]] = []  # finite rewards, in order
        self._failed_set: set[tuple[int, ...]] = set()
        self._pending: dict[tuple[int, ...], int] = {}
        # The current climb: its first history index, best reward, rewards since it improved.
        self._climb_start, self._climb_best, self._climb_since = 0, -math.inf, 0
        self._restarts = 0

    @property
    def version(self) -> int:
        """Number of predictor fits so far (refits after a resume not counted)."""
        return self._screen.fits

    @property
    def best(self) -> tuple[list[int], float] | None:
        """The best architecture so far and its reward (None before any)."""
        if not self._history:
            return None
        tokens, reward = max(self._history, key=lambda h: h[1])
        return list(tokens), reward

    def stats(self) -> dict[str, float]:
        return {
            "history": float(len(self._history)),
            "fits": float(self._screen.fits),
            "restarts": float(self._restarts),
        }

    def _seen(self) -> set[tuple[int, ...]]:
        seen = {t for t, _ in self._history}
        seen.update(self._failed_set)
        seen.update(self._pending)
        return seen

    def _propose(self) -> tuple[list[int], dict[str, Any] | None]:
        seen = self._seen()
        tokens: list[int] | None = None
        meta: dict[str, Any] = {"guided": False}
        if len(self._history) >= max(2, self.num_init):
            candidates = self._candidates(seen)
            if candidates:
                best, mean = self._screen.pick(
                    self._history, candidates, self.acquisition, self.rng
                )
                tokens = list(candidates[best])
                meta = {"guided": True, "predicted": float(mean[best])}
        if tokens is None:
            tokens = unseen_random(self, seen)
        key = tuple(tokens)
        self._pending[key] = self._pending.get(key, 0) + 1
        return tokens, meta

    def _candidates(self, seen: set[tuple[int, ...]]) -> list[tuple[int, ...]]:
        """Unseen neighbours of the best architectures (best first) up to
        ``num_candidates``, plus a fifth as many two-step mutations of them and
        a fifth as many uniformly random architectures."""
        climb = self._history[self._climb_start :]
        out: dict[tuple[int, ...], None] = {}
        if not climb:  # a restart: a uniformly random start (see the module docs)
            return []
        ranked = sorted(climb, key=lambda h: -h[1])  # stable: earlier first on ties
        parents = [list(t) for t, _ in ranked[: self.num_parents]]
        for parent in parents:
            for child in neighbours(self.codec, parent, self.rng):
                key = tuple(child)
                if key not in seen:
                    out[key] = None
            if len(out) >= self.num_candidates:
                break
        for i in range(max(1, self.num_candidates // 5)):
            child = mutate(self.codec, parents[i % len(parents)], self.rng)
            for key in (
                tuple(mutate(self.codec, child, self.rng)),
                tuple(self.codec.random_tokens(self.rng)),
            ):
                if key not in seen:
                    out[key] = None
        return list(out)

    def _release(self, proposal: Proposal) -> tuple[int, ...]:
        key = tuple(proposal.tokens)
        left = self._pending.get(key, 0) - 1
        if left > 0:
            self._pending[key] = left
        else:
            self._pending.pop(key, None)
        return key

    def _feedback(self, proposal: Proposal, reward: float) -> None:
        self._history.append((self._release(proposal), reward))
        if reward > self._climb_best:
            self._climb_best, self._climb_since = reward, 0
        else:
            self._climb_since += 1
            if self.patience is not None and self._climb_since >= self.patience:
                self._climb_start, self._climb_best, self._climb_since = (
                    len(self._history),
                    -math.inf,
                    0,
                )
                self._restarts += 1

    def _failed(self, proposal: Proposal) -> None:
        self._failed_set.add(self._release(proposal))

    def _state_dict(self) -> dict[str, Any]:
        return {
            **self._settings(),
            "history": [[list(t), r] for t, r in self._history],
            "failed": [list(t) for t in sorted(self._failed_set)],
            "pending": [[list(t), n] for t, n in self._pending.items()],
            "fits": self._screen.fits,
            "fitted_on": self._screen.fitted_on,
            "climb": [
                self._climb_start,
                None if self._climb_best == -math.inf else self._climb_best,
                self._climb_since,
            ],
            "restarts": self._restarts,
        }

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in self._settings().items():
            if state[key] != value:
                raise ValueError(
                    f"`{key}` must match the saved algorithm's ({state[key]!r}), but got {value!r}"
                )

        def as_key(tokens: list[int]) -> tuple[int, ...]:
            out = tuple(int(t) for t in tokens)
            self.codec.validate(out)
            return out

        self._history = [(as_key(t), float(r)) for t, r in state["history"]]
        self._failed_set = {as_key(t) for t in state["failed"]}
        self._pending = {as_key(t): int(n) for t, n in state["pending"]}
        # The weights are refitted from the history when next needed (same seed, same fit).
        self._screen.forget()
        self._screen.fits = int(state["fits"])
        self._screen.fitted_on = int(state["fitted_on"])
        start, best, since = state["climb"]
        self._climb_start, self._climb_since = int(start), int(since)
        self._climb_best = -math.inf if best is None else float(best)
        self._restarts = int(state["restarts"])
        if not all(math.isfinite(r) for _, r in self._history):
            raise ValueError("`state` must hold finite rewards in its history")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_init={self.num_init}, "
            f"num_candidates={self.num_candidates}, acquisition={self.acquisition!r}, "
            f"seed={self.seed})"
        )
