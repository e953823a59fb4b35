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

Float decisions: with ``unbinned_floats=True`` (the default) random proposals
draw each float's exact value uniformly on its scale and mutation moves a float by
a Gaussian step on its scale (a tenth of the range, reflected at the ends; see
:mod:`symbolic_nas.algorithms.mutation`), so the search is not held to the bins;
the tokens (the nearest bins) are what the population and the journal key on.
``unbinned_floats=False`` mutates bins, as before.

Failure policy: a failed proposal (``None``/NaN/inf reward) never joins the
population; a proposal never answered never blocks (with an empty population
every proposal is random).
"""

from __future__ import annotations

import collections
from typing import Any, ClassVar

from symbolic_nas.algorithms.base import Algorithm, Proposal, Proposed, register
from symbolic_nas.algorithms.mutation import mutate, mutate_with_floats
from symbolic_nas.space.floats import check_floats, floats_from_json, floats_to_json
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
        unbinned_floats: Float decisions take exact values (drawn uniformly on
            their scale, mutated by a Gaussian step), not only bins; see above.
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
        "unbinned_floats": ["boolean"],
    }

    def __init__(
        self,
        *,
        population_size: int = 20,
        tournament_size: int = 5,
        unbinned_floats: bool = True,
        seed: int | None = 0,
    ):
        validate_params(
            self._parameter_constraints,
            {
                "population_size": population_size,
                "tournament_size": tournament_size,
                "unbinned_floats": unbinned_floats,
            },
        )
        if tournament_size > population_size:
            rule = f"an int in [2, population_size={population_size}]"
            raise parameter_error("tournament_size", rule, tournament_size)
        super().__init__(seed=seed)
        self.population_size = population_size
        self.tournament_size = tournament_size
        self.unbinned_floats = unbinned_floats
        # Members: (tokens, reward, proposal id, exact float values).
        self._population: collections.deque[tuple[list[int], float, int, dict[int, float]]] = (
            collections.deque()
        )

    @property
    def population(self) -> list[tuple[list[int], float, int]]:
        """The members as ``(tokens, reward, proposal id)``, oldest first (their exact
        float values: :attr:`population_floats`)."""
        return [(list(t), r, i) for t, r, i, _ in self._population]

    @property
    def population_floats(self) -> list[dict[int, float]]:
        """The exact float values of the members (by decision index), oldest first."""
        return [dict(f) for *_, f in self._population]

    @property
    def version(self) -> int:
        """Number of rewards that joined the population."""
        return self._joined

    def stats(self) -> dict[str, float]:
        rewards = [r for _, r, _, _ in self._population]
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

    def _propose(self) -> Proposed:
        unbinned = self.unbinned_floats and self.codec.has_floats
        if len(self._population) < self.population_size:
            if unbinned:
                tokens, floats = self.codec.random_sample(self.rng)
                return tokens, {"parent": None}, floats
            return self.codec.random_tokens(self.rng), {"parent": None}
        sample = self.rng.sample(list(self._population), self.tournament_size)
        parent = max(sample, key=lambda member: member[1])
        if unbinned:
            tokens, floats = mutate_with_floats(self.codec, parent[0], parent[3], self.rng)
            return tokens, {"parent": parent[2]}, floats
        return mutate(self.codec, parent[0], self.rng), {"parent": parent[2]}

    def _feedback(self, proposal: Proposal, reward: float) -> None:
        member = (list(proposal.tokens), reward, proposal.id, dict(proposal.floats))
        self._population.append(member)
        self._joined += 1

    def _state_dict(self) -> dict[str, Any]:
        return {
            "population_size": self.population_size,
            "tournament_size": self.tournament_size,
            "unbinned_floats": self.unbinned_floats,
            "population": [
                [list(t), r, i, *([floats_to_json(f)] if f else [])]
                for t, r, i, f in self._population
            ],
            "joined": self._joined,
        }

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        # A checkpoint of an earlier version (no key) mutated bins; without float
        # decisions the option changes nothing.
        keys = ["population_size", "tournament_size"]
        keys += ["unbinned_floats"] if self.codec.has_floats else []
        for key in keys:
            saved = state.get(key, False)
            if saved != getattr(self, key):
                raise ValueError(
                    f"`{key}` must match the saved algorithm's ({saved!r}), "
                    f"but got {getattr(self, key)!r}"
                )
        members = []
        for tokens, reward, proposal_id, *floats in state["population"]:
            tokens = [int(t) for t in tokens]
            trace = self.codec.trace(tokens)
            exact = floats_from_json(floats[0] if floats else None)
            exact = check_floats(self.codec, trace, tokens, exact)
            members.append((tokens, float(reward), int(proposal_id), exact))
        self._population = collections.deque(members, maxlen=self.population_size)
        self._joined = int(state["joined"])

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(population_size={self.population_size}, "
            f"tournament_size={self.tournament_size}, "
            + ("" if self.unbinned_floats else "unbinned_floats=False, ")
            + f"seed={self.seed})"
        )
