"""NSGA-II over token sequences (Deb, Pratap, Agarwal & Meyarivan, IEEE TEC 2002).

A steady-state version for asynchronous workers: the parent population holds the
``population_size`` best members by NSGA-II's environmental selection
(non-dominated sorting, then crowding distance within the last front admitted);
each result that comes back joins it and the worst member leaves. Until the
population is full, proposals are uniformly random. After that, each proposal
picks two parents by binary tournament (lower front rank wins, then larger
crowding distance), crosses them uniformly with probability ``crossover_rate``
(the child must be a valid token sequence of the codec, else the first parent is
kept) and mutates the result in one decision
(:func:`~symbolic_nas.algorithms.mutation.mutate`). A child already proposed is
drawn again (up to 20 times), so a tabular search does not spend queries on
repeats.

The algorithm learns from the objective vector the tuner passes with
``feedback(proposal, reward, objectives=[...])`` (every entry maximised); a
reward alone (the plain ``feedback`` call, or an infeasible trial of a
constrained search) ranks below every member with a vector, by reward, and a
search with no vectors at all is single-objective NSGA-II on the reward.

Failure policy: a failed proposal never joins the population; a proposal never
answered never blocks.
"""

from __future__ import annotations

from typing import Any, ClassVar

from symbolic_nas.algorithms.base import Algorithm, Proposal, register
from symbolic_nas.algorithms.mutation import mutate
from symbolic_nas.algorithms.pareto import crowding_distance, non_dominated_sort
from symbolic_nas.validation import Interval, validate_params

__all__ = ["NSGA2"]

_RETRIES = 20
# A member: (tokens, objective vector or None, reward, proposal id).
Member = tuple[list[int], "list[float] | None", float, int]


@register("nsga2")
class NSGA2(Algorithm):
    """NSGA-II: non-dominated sorting, crowding distance, binary tournaments.

    Reference: K. Deb, A. Pratap, S. Agarwal and T. Meyarivan, "A Fast and Elitist
    Multiobjective Genetic Algorithm: NSGA-II", IEEE Transactions on Evolutionary
    Computation 6(2), 2002. PyGlove ships one for DNA (``pg.evolution.nsga2``);
    this one works on tokens and is seeded.

    Args:
        population_size: Members kept (N), at least 2.
        crossover_rate: Probability of uniform crossover of the two parents.
        seed: Seed of the algorithm's own RNG.

    Example:
        >>> import symbolic_nas as sn
        >>> from symbolic_nas import algorithms
        >>> codec = sn.encode({"a": sn.oneof([1, 2, 3]), "b": sn.oneof([4, 5, 6])})
        >>> algo = algorithms.get("nsga2", population_size=4, seed=0)
        >>> algo.setup(codec, budget=12)
        >>> for _ in range(12):
        ...     p = algo.propose()
        ...     a, b = p.tokens
        ...     algo.feedback(p, float(a), objectives=[float(a), -float(b)])
        >>> len(algo.population), algo.multi_objective
        (4, True)
    """

    multi_objective: ClassVar[bool] = True
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **Algorithm._parameter_constraints,
        "population_size": [Interval(int, 2, None)],
        "crossover_rate": [Interval(float, 0, 1)],
    }

    def __init__(
        self, *, population_size: int = 20, crossover_rate: float = 0.5, seed: int | None = 0
    ):
        validate_params(
            self._parameter_constraints,
            {"population_size": population_size, "crossover_rate": crossover_rate},
        )
        super().__init__(seed=seed)
        self.population_size = population_size
        self.crossover_rate = float(crossover_rate)
        self._population: list[Member] = []
        self._seen: set[tuple[int, ...]] = set()
        self._ranks: list[tuple[int, float]] = []

    @property
    def population(self) -> list[tuple[list[int], list[float] | None, float, int]]:
        """The members as ``(tokens, objective vector or None, reward, proposal id)``."""
        return [(list(t), None if v is None else list(v), r, i) for t, v, r, i in self._population]

    @property
    def version(self) -> int:
        """Number of results that joined the population."""
        return self._joined

    def stats(self) -> dict[str, float]:
        fronts = self._fronts(self._population)
        return {
            "population": float(len(self._population)),
            "first_front": float(len(fronts[0]) if fronts else 0),
        }

    def _setup(self) -> None:
        self._population = []
        self._seen = set()
        self._ranks = []
        self._joined = 0

    # ------------------------------------------------------------------ proposing

    def _propose(self) -> tuple[list[int], dict[str, Any] | None]:
        codec = self.codec
        if len(self._population) < self.population_size:
            tokens = codec.random_tokens(self.rng)
            for _ in range(_RETRIES):
                if tuple(tokens) not in self._seen:
                    break
                tokens = codec.random_tokens(self.rng)
            self._seen.add(tuple(tokens))
            return tokens, {"parents": None}
        for _ in range(_RETRIES):
            first, second = self._tournament(), self._tournament()
            child = list(self._population[first][0])
            other = self._population[second][0]
            if self.rng.random() < self.crossover_rate and len(other) == len(child):
                crossed = [a if self.rng.random() < 0.5 else b for a, b in zip(child, other)]
                if _valid(codec, crossed):
                    child = crossed
            child = mutate(codec, child, self.rng)
            if tuple(child) not in self._seen:
                break
        self._seen.add(tuple(child))
        ids = [self._population[first][3], self._population[second][3]]
        return child, {"parents": ids}

    def _tournament(self) -> int:
        a, b = self.rng.sample(range(len(self._population)), 2)
        (rank_a, crowd_a), (rank_b, crowd_b) = self._ranks[a], self._ranks[b]
        if (rank_a, -crowd_a) <= (rank_b, -crowd_b):
            return a
        return b

    # ------------------------------------------------------------------ learning

    def _feedback(self, proposal: Proposal, reward: float) -> None:
        self._join((list(proposal.tokens), None, reward, proposal.id))

    def _feedback_objectives(
        self, proposal: Proposal, reward: float, objectives: list[float]
    ) -> None:
        self._join((list(proposal.tokens), list(objectives), reward, proposal.id))

    def _join(self, member: Member) -> None:
        self._seen.add(tuple(member[0]))
        self._joined += 1
        members = [*self._population, member]
        if len(members) > self.population_size:
            members = self._select(members, self.population_size)
        self._population = members
        self._ranks = self._rank(members)

    def _fronts(self, members: list[Member]) -> list[list[int]]:
        """Fronts (indices into ``members``), best first; members without a vector last."""
        with_vector = [i for i, m in enumerate(members) if m[1] is not None]
        if not with_vector:  # Single-objective: the reward is the vector.
            return [[i for i, _ in group] for group in _by_reward(members, range(len(members)))]
        dims = {len(members[i][1] or ()) for i in with_vector}
        if len(dims) != 1:
            raise ValueError(
                f"`objectives` must have the same length for every proposal, but got lengths "
                f"{sorted(dims)}"
            )
        points = [members[i][1] or [] for i in with_vector]
        fronts = [[with_vector[k] for k in front] for front in non_dominated_sort(points)]
        rest = [i for i, m in enumerate(members) if m[1] is None]
        return fronts + [[i for i, _ in group] for group in _by_reward(members, rest)]

    def _rank(self, members: list[Member]) -> list[tuple[int, float]]:
        """(front rank, crowding distance) of every member."""
        ranks: list[tuple[int, float]] = [(0, 0.0)] * len(members)
        for rank, front in enumerate(self._fronts(members)):
            distances = crowding_distance([_vector(members[i]) for i in front])
            for i, d in zip(front, distances):
                ranks[i] = (rank, d)
        return ranks

    def _select(self, members: list[Member], size: int) -> list[Member]:
        """NSGA-II environmental selection: whole fronts, then the most crowded-apart."""
        kept: list[int] = []
        for front in self._fronts(members):
            if len(kept) + len(front) <= size:
                kept += front
                continue
            distances = crowding_distance([_vector(members[i]) for i in front])
            order = sorted(range(len(front)), key=lambda k: (-distances[k], members[front[k]][3]))
            kept += [front[k] for k in order[: size - len(kept)]]
            break
        return [members[i] for i in sorted(kept)]

    # ------------------------------------------------------------------ state

    def _state_dict(self) -> dict[str, Any]:
        return {
            "population_size": self.population_size,
            "crossover_rate": self.crossover_rate,
            "population": [[t, v, r, i] for t, v, r, i in self.population],
            "seen": sorted(list(t) for t in self._seen),
            "joined": self._joined,
        }

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("population_size", "crossover_rate"):
            if state[key] != getattr(self, key):
                raise ValueError(
                    f"`state` must come from an nsga2 algorithm with {key}={getattr(self, key)!r}, "
                    f"but got {key}={state[key]!r}"
                )
        self._population = [
            (
                [int(x) for x in t],
                None if v is None else [float(x) for x in v],
                float(r),
                int(i),
            )
            for t, v, r, i in state["population"]
        ]
        for member in self._population:
            self.codec.validate(member[0])
        self._seen = {tuple(int(x) for x in t) for t in state["seen"]}
        self._joined = int(state["joined"])
        self._ranks = self._rank(self._population)


def _vector(member: Member) -> list[float]:
    return member[1] if member[1] is not None else [member[2]]


def _by_reward(members: list[Member], indices: Any) -> list[list[tuple[int, float]]]:
    """Members without a vector as single-objective fronts: equal rewards share a front."""
    groups: dict[float, list[tuple[int, float]]] = {}
    for i in indices:
        groups.setdefault(members[i][2], []).append((i, members[i][2]))
    return [groups[r] for r in sorted(groups, reverse=True)]


def _valid(codec: Any, tokens: list[int]) -> bool:
    try:
        codec.validate(tokens)
    except (ValueError, TypeError, IndexError):
        return False
    return True
