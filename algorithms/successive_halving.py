"""Successive halving as a multi-fidelity schedule: promotion, not stopping.

A *budget* (the resource a trial trains for, e.g. epochs) travels with each
proposal in ``proposal.meta["budget"]``; the tuner hands it to the trial
(``sn.current_trial().budget``, which :class:`~symbolic_nas.Trainer` trains for).
Rungs sit at budgets ``min_budget * reduction_factor ** k`` up to ``max_budget``.
New architectures come from a *base* algorithm (``"random"`` by default, any
registered algorithm or an instance) and are evaluated at the lowest rung; the
best ``1 / reduction_factor`` of a rung are *re-proposed* (same tokens, same exact
float values) as new trials with ``reduction_factor`` times the budget. No trial
is ever stopped midway: each trial trains its whole budget from scratch, so it
works with any evaluator that reads ``sn.current_trial().budget`` and needs no
checkpoints.

Promotions are asynchronous, as in ASHA (Li et al., MLSys 2020): whenever a
proposal is asked for, the highest rung holding a result in its top
``1 / reduction_factor`` (``floor(n / reduction_factor)`` of its ``n`` results)
that was not promoted yet gives it; otherwise the base algorithm draws a new
architecture for the lowest rung. With one worker and a rung filled before the
next proposal this is synchronous successive halving (Jamieson & Talwalkar,
2016); with many workers nothing waits for a rung to fill. ``brackets`` adds
Hyperband's brackets (Li et al., JMLR 2018): new architectures start at rung
``b`` of bracket ``b``, in turn, so some are trained at larger budgets from the
start (each bracket has its own rungs).

What the base algorithm learns from: its own proposals' rewards, at the budget
they were trained for (the lowest rung of their bracket); promoted trials are the
schedule's, not the base's. A failed trial (``None``/NaN/inf reward) counts in its
rung and is never promoted.

Which result is "best" with mixed budgets: rewards at different budgets are not
comparable (more epochs, higher accuracy), and ``SearchResult.best`` is simply
the highest reward; with this schedule it is (almost always) a trial of the top
rung, as promoted architectures are trained longest. Compare trials of the same
``budget`` (a metric of every trial the schedule gave one) to rank architectures.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from symbolic_nas.algorithms.base import Algorithm, Proposal, Proposed, get, register
from symbolic_nas.validation import (
    InstanceOf,
    Interval,
    InvalidParameterError,
    parameter_error,
    validate_params,
)

__all__ = ["SuccessiveHalving"]


@register("successive_halving")
class SuccessiveHalving(Algorithm):
    """Successive halving over a base algorithm's architectures (budget per proposal).

    References: K. Jamieson and A. Talwalkar, "Non-stochastic Best Arm
    Identification and Hyperparameter Optimization", AISTATS 2016; L. Li,
    K. Jamieson, G. DeSalvo, A. Rostamizadeh and A. Talwalkar, "Hyperband: A Novel
    Bandit-Based Approach to Hyperparameter Optimization", JMLR 18, 2018; L. Li,
    K. Jamieson, A. Rostamizadeh, E. Gonina, J. Ben-Tzur, M. Hardt, B. Recht and
    A. Talwalkar, "A System for Massively Parallel Hyperparameter Tuning", MLSys 2020.

    Args:
        base: The algorithm that proposes new architectures: a registered name
            (built with ``seed``) or an instance.
        min_budget: The budget of the lowest rung (e.g. epochs), above 0.
        max_budget: The largest budget; rungs are ``min_budget * reduction_factor ** k``
            not above it. At least ``min_budget``.
        reduction_factor: η, above 1: the top ``1 / η`` of a rung is promoted with
            η times the budget.
        brackets: Hyperband's brackets (1: plain successive halving; at most the
            number of rungs).
        seed: Seed of the base algorithm when it is given by name.

    Example:
        >>> import symbolic_nas as sn
        >>> from symbolic_nas import algorithms
        >>> algo = algorithms.get("successive_halving", min_budget=1, max_budget=4,
        ...                       reduction_factor=2, seed=0)
        >>> algo.setup(sn.encode({"k": sn.oneof([1, 2, 3, 4])}))
        >>> algo.rungs
        [1, 2, 4]
        >>> first, second = algo.propose(), algo.propose()
        >>> algo.feedback(first, 0.9); algo.feedback(second, 0.1)
        >>> promoted = algo.propose()
        >>> promoted.tokens == first.tokens, promoted.meta["budget"]
        (True, 2)
    """

    schedules_budget = True
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **Algorithm._parameter_constraints,
        "base": [
            InstanceOf(str, "a registered algorithm name"),
            InstanceOf(Algorithm, "an Algorithm instance"),
        ],
        "min_budget": [Interval(float, 0, None, closed="neither")],
        "max_budget": [Interval(float, 0, None, closed="neither")],
        "reduction_factor": [Interval(float, 1, None, closed="neither")],
        "brackets": [Interval(int, 1, None)],
    }

    def __init__(
        self,
        *,
        base: str | Algorithm = "random",
        min_budget: float = 1,
        max_budget: float = 9,
        reduction_factor: float = 3,
        brackets: int = 1,
        seed: int | None = 0,
    ) -> None:
        validate_params(
            self._parameter_constraints,
            {
                "base": base,
                "min_budget": min_budget,
                "max_budget": max_budget,
                "reduction_factor": reduction_factor,
                "brackets": brackets,
            },
        )
        if max_budget < min_budget:
            raise parameter_error("max_budget", f"at least min_budget={min_budget!r}", max_budget)
        super().__init__(seed=seed)
        if isinstance(base, str):
            if base == self.name:
                raise parameter_error("base", "an algorithm other than successive_halving", base)
            try:
                base = get(base, seed=seed)
            except InvalidParameterError as e:
                raise parameter_error("base", "a registered algorithm name", base) from e
        elif isinstance(base, SuccessiveHalving):
            raise parameter_error("base", "an algorithm other than successive_halving", base)
        self.base: Algorithm = base
        # It learns what its base learns: promotions only re-evaluate (a fidelity-free
        # objective gains nothing from them), so random search stays the baseline.
        self.learns = base.learns  # type: ignore[misc]
        self.min_budget = min_budget
        self.max_budget = max_budget
        self.reduction_factor = reduction_factor
        self.rungs = _rungs(min_budget, max_budget, reduction_factor)
        if brackets > len(self.rungs):
            raise parameter_error(
                "brackets",
                f"at most the number of rungs ({len(self.rungs)}: {self.rungs})",
                brackets,
            )
        self.brackets = brackets

    # ------------------------------------------------------------------ state

    def _setup(self) -> None:
        self.base.setup(self.codec, budget=self.budget)
        # The architectures (configurations), by the id of the trial that drew them.
        self._configs: dict[int, dict[str, Any]] = {}
        # results[b][k]: config id -> reward (None: failed) at rung k of bracket b.
        self._results: list[list[dict[int, float | None]]] = [
            [{} for _ in self.rungs] for _ in range(self.brackets)
        ]
        # promoted[b][k]: config ids promoted out of rung k of bracket b.
        self._promoted: list[list[set[int]]] = [
            [set() for _ in self.rungs] for _ in range(self.brackets)
        ]
        self._next_bracket = 0

    @property
    def version(self) -> int:
        return self.base.version

    def stats(self) -> dict[str, float]:
        out = {f"base/{k}": v for k, v in self.base.stats().items()}
        for b, rungs in enumerate(self._results):
            for k, results in enumerate(rungs):
                if results:
                    prefix = f"bracket{b}/" if self.brackets > 1 else ""
                    out[f"{prefix}rung{k}_results"] = float(len(results))
        return out

    # ------------------------------------------------------------------ hooks

    def _propose(self) -> Proposed:
        promotion = self._promotion()
        if promotion is not None:
            bracket, rung, config_id = promotion
            self._promoted[bracket][rung].add(config_id)
            config = self._configs[config_id]
            meta: dict[str, Any] = {
                "budget": self.rungs[rung + 1],
                "rung": rung + 1,
                "bracket": bracket,
                "config": config_id,
            }
            return list(config["tokens"]), meta, dict(config["floats"])
        bracket = self._next_bracket
        self._next_bracket = (bracket + 1) % self.brackets
        proposal = self.base.propose()
        config_id = self.num_proposed  # The id this proposal gets.
        self._configs[config_id] = {
            "tokens": list(proposal.tokens),
            "floats": dict(proposal.floats),
            "base": proposal.id,
        }
        meta = {
            "budget": self.rungs[bracket],
            "rung": bracket,
            "bracket": bracket,
            "config": config_id,
        }
        if proposal.meta:
            meta["base_meta"] = dict(proposal.meta)
        return list(proposal.tokens), meta, dict(proposal.floats)

    def _promotion(self) -> tuple[int, int, int] | None:
        """(bracket, rung, config id) of the next promotion, or None: the highest rung
        first, then the lowest bracket; within a rung the best result (lowest id on ties)."""
        for rung in range(len(self.rungs) - 2, -1, -1):
            for bracket in range(self.brackets):
                results = self._results[bracket][rung]
                keep = math.floor(len(results) / self.reduction_factor)
                if keep < 1:
                    continue
                ranked = sorted(
                    (cid for cid, r in results.items() if r is not None),
                    key=lambda cid: (-results[cid], cid),  # type: ignore[operator]
                )[:keep]
                for cid in ranked:
                    if cid not in self._promoted[bracket][rung]:
                        return bracket, rung, cid
        return None

    def _record(self, proposal: Proposal, reward: float | None) -> None:
        meta = proposal.meta
        bracket, rung, config_id = int(meta["bracket"]), int(meta["rung"]), int(meta["config"])
        self._results[bracket][rung][config_id] = reward
        if rung == bracket:  # The base algorithm's own proposal.
            base = self.base.outstanding_proposal(int(self._configs[config_id]["base"]))
            if base is not None:
                self.base.feedback(base, reward)

    def _feedback(self, proposal: Proposal, reward: float) -> None:
        self._record(proposal, reward)

    def _failed(self, proposal: Proposal) -> None:
        self._record(proposal, None)

    def _state_dict(self) -> dict[str, Any]:
        return {
            "settings": self._settings(),
            "base": self.base.state_dict(),
            "configs": [
                [cid, c["tokens"], [[int(d), float(v)] for d, v in c["floats"].items()], c["base"]]
                for cid, c in self._configs.items()
            ],
            "results": [
                [[[cid, r] for cid, r in results.items()] for results in rungs]
                for rungs in self._results
            ],
            "promoted": [[sorted(p) for p in rungs] for rungs in self._promoted],
            "next_bracket": self._next_bracket,
        }

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state["settings"]
        if saved != self._settings():
            raise ValueError(
                f"`successive_halving`'s settings must match the saved algorithm's ({saved}), "
                f"but got {self._settings()}"
            )
        self.base.load_state_dict(state["base"])
        self._configs = {
            int(cid): {
                "tokens": [int(t) for t in tokens],
                "floats": {int(d): float(v) for d, v in floats},
                "base": int(base),
            }
            for cid, tokens, floats, base in state["configs"]
        }
        self._results = [
            [
                {int(cid): (None if r is None else float(r)) for cid, r in results}
                for results in rungs
            ]
            for rungs in state["results"]
        ]
        self._promoted = [[{int(c) for c in p} for p in rungs] for rungs in state["promoted"]]
        self._next_bracket = int(state["next_bracket"])

    def _settings(self) -> dict[str, Any]:
        return {
            "base": self.base.name,
            "rungs": [float(r) for r in self.rungs],
            "reduction_factor": float(self.reduction_factor),
            "brackets": self.brackets,
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base={self.base!r}, min_budget={self.min_budget!r}, "
            f"max_budget={self.max_budget!r}, reduction_factor={self.reduction_factor!r}, "
            f"brackets={self.brackets}, seed={self.seed})"
        )


def _rungs(min_budget: float, max_budget: float, reduction_factor: float) -> list[float]:
    """The rung budgets ``min_budget * reduction_factor ** k`` up to ``max_budget``
    (ints where whole; a relative 1e-9 slack against rounding).

    Example:
        >>> _rungs(1, 9, 3), _rungs(1, 10, 3), _rungs(0.5, 2, 2)
        ([1, 3, 9], [1, 3, 9], [0.5, 1, 2])
    """
    found: list[float] = []
    k = 0
    while True:
        budget = min_budget * reduction_factor**k
        if budget > max_budget * (1 + 1e-9):
            return found
        rounded = round(budget)
        whole = abs(budget - rounded) <= 1e-9 * max(1.0, abs(budget))
        found.append(int(rounded) if whole else budget)
        k += 1
