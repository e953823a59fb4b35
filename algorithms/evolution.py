"""Regularized (aging) evolution over token sequences (Real et al., AAAI 2019).

The algorithm keeps a population of the ``population_size`` most recently
finished architectures. Until the population is full, proposals are uniformly
random. After that, each proposal samples ``tournament_size`` members without
replacement, takes the best of the sample as the parent and mutates it
(:func:`~symbolic_nas.algorithms.mutation.mutate`: one decision changed to
another valid token, the subtree it makes active re-sampled). When a result
comes back the architecture joins the population and the oldest member dies,
whatever its reward: that aging is the regularisation.

It is the same algorithm as PyGlove's ``pg.evolution.regularized_evolution``
(``Random(S) >> Top(1) >> mutator``, ``population_init=(Random, P)``,
``population_update=Last(P)``), written over tokens because PyGlove's version
works on DNA objects (two orders of magnitude slower per trial:
``benchmarks/RESULTS-tuner.md``) and cannot be seeded (its default mutator is an unseeded
shared instance). A test drives PyGlove's ``regularized_evolution`` with the
same random stream and mutation and checks that both propose the same
sequences. The mutation itself differs from PyGlove's default ``Uniform``
mutator, which re-samples a random subtree and may return the parent
unchanged: here a child always differs in one decision, as in Real et al.'s
op mutation and the NAS-Bench-201 baseline ("changes one decision" includes
re-sampling the subtree a new branch activates).

Two details follow PyGlove where the paper is silent about asynchronous
workers: a member's age counts from when its reward arrived (the population
is a queue in feedback order), and the population starts evolving once
``population_size`` rewards have arrived. Ties in a tournament go to the
member sampled first.

Failure policy: a failed proposal (``None``/NaN/inf reward) never joins the
population; a proposal never answered never blocks (with an empty population
every proposal is random).
"""

from __future__ import annotations

import collections
from typing import Any, ClassVar

from symbolic_nas.algorithms.base import Algorithm, Proposal, register
from symbolic_nas.algorithms.mutation import mutate
from symbolic_nas.validation import Interval, parameter_error, validate_params

__all__ = ["RegularizedEvolution"]


@register("evolution")
class RegularizedEvolution(Algorithm):
    """Regularized evolution (aging evolution) with tournament selection.

    Reference: E. Real, A. Aggarwal, Y. Huang and Q. V. Le, "Regularized
    Evolution for Image Classifier Architecture Search", AAAI 2019
    (arXiv:1802.01548).

    Defaults: the NAS-Bench-201 baselines use ``population_size=10,
    tournament_size=3`` with one-edge mutation, Real et al. 100 and 25 on
    20,000 models. The default here, 20 and 5, keeps Real et al.'s ratio of one
    quarter and suits the 100–1,000 trials users run: the random phase is a
    small share of such budgets, and the population holds more diversity than
    10 for spaces larger than NAS-Bench-201's six decisions. In the runs that
    chose it (``benchmarks/RESULTS.md``), longer runs on larger spaces did better
    with a larger population, so raise ``population_size`` (and
    ``tournament_size`` with it) for runs of about 1,000 trials.

    Args:
        population_size: Number of members kept (P), at least 2.
        tournament_size: Members sampled per tournament (S), in ``[2, P]``.
        seed: Seed of the algorithm's own RNG.

    Example:
        >>> import symbolic_nas as sn
        >>> from symbolic_nas import algorithms
        >>> codec = sn.encode({"a": sn.oneof([1, 2, 3]), "b": sn.oneof([4, 5, 6])})
        >>> algo = algorithms.get("evolution", population_size=4, tournament_size=2, seed=0)
        >>> algo.setup(codec, budget=20)
        >>> for _ in range(20):
        ...     p = algo.propose()
        ...     algo.feedback(p, float(sum(p.tokens)))
        >>> len(algo.population)
        4
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **Algorithm._parameter_constraints,
        "population_size": [Interval(int, 2, None)],
        "tournament_size": [Interval(int, 2, None)],
    }

    def __init__(
        self, *, population_size: int = 20, tournament_size: int = 5, seed: int | None = 0
    ):
        validate_params(
            self._parameter_constraints,
            {"population_size": population_size, "tournament_size": tournament_size},
        )
        if tournament_size > population_size:
            rule = f"an int in [2, population_size={population_size}]"
            raise parameter_error("tournament_size", rule, tournament_size)
        super().__init__(seed=seed)
        self.population_size = population_size
        self.tournament_size = tournament_size
        self._population: collections.deque[tuple[list[int], float, int]] = collections.deque()

    @property
    def population(self) -> list[tuple[list[int], float, int]]:
        """The members as ``(tokens, reward, proposal id)``, oldest first."""
        return [(list(t), r, i) for t, r, i in self._population]

    @property
    def version(self) -> int:
        """Number of rewards that joined the population."""
        return self._joined

    def stats(self) -> dict[str, float]:
        rewards = [r for _, r, _ in self._population]
        if not rewards:
            return {"population": 0.0}
        return {
            "population": float(len(rewards)),
            "population_best": max(rewards),
            "population_mean": sum(rewards) / len(rewards),
        }

    def _setup(self) -> None:
        self._population = collections.deque(maxlen=self.population_size)
        self._joined = 0

    def _propose(self) -> tuple[list[int], dict[str, Any] | None]:
        if len(self._population) < self.population_size:
            return self.codec.random_tokens(self.rng), {"parent": None}
        sample = self.rng.sample(list(self._population), self.tournament_size)
        parent = max(sample, key=lambda member: member[1])
        return mutate(self.codec, parent[0], self.rng), {"parent": parent[2]}

    def _feedback(self, proposal: Proposal, reward: float) -> None:
        self._population.append((list(proposal.tokens), reward, proposal.id))
        self._joined += 1

    def _state_dict(self) -> dict[str, Any]:
        return {
            "population_size": self.population_size,
            "tournament_size": self.tournament_size,
            "population": [[list(t), r, i] for t, r, i in self._population],
            "joined": self._joined,
        }

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("population_size", "tournament_size"):
            if state[key] != getattr(self, key):
                raise ValueError(
                    f"`{key}` must match the saved algorithm's ({state[key]!r}), "
                    f"but got {getattr(self, key)!r}"
                )
        members = []
        for tokens, reward, proposal_id in state["population"]:
            tokens = [int(t) for t in tokens]
            self.codec.validate(tokens)
            members.append((tokens, float(reward), int(proposal_id)))
        self._population = collections.deque(members, maxlen=self.population_size)
        self._joined = int(state["joined"])

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(population_size={self.population_size}, "
            f"tournament_size={self.tournament_size}, seed={self.seed})"
        )
