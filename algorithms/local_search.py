"""Local search over token sequences (White, Nolen and Savani, UAI 2021).

Hill climbing with restarts. A climb starts from the best of ``num_init``
uniformly random architectures; then every neighbour of the current
architecture (:func:`~symbolic_nas.algorithms.mutation.neighbours`: one active
decision changed to another valid token, newly active decisions drawn at
random, an exact-``k`` membership swapped) is evaluated, in a random order, and
the climb moves to the best neighbour when it beats the current architecture.
When no neighbour does, the current architecture is a local optimum and a new
climb starts from fresh random architectures. White et al. report that this
plain procedure finds NAS-Bench-201's optimum after about 127 queries on
average (CIFAR-100), ahead of most sophisticated methods.

Deduplication: an architecture already evaluated (or outstanding) is never
proposed again while the space has unseen ones; a neighbour already known
takes part in the move with its known reward.

Asynchronous workers: proposals are handed out from the current phase (the
random starts, then the neighbours) and the phase advances once all of its
proposals have come back, so many may be outstanding at once. A proposal
asked for while the phase waits on outstanding results is a uniformly random
unseen architecture (a *spare*); a spare that comes back joins the random
starts of the next climb. With one worker no spare is ever drawn.

Failure policy: a failed proposal (``None``/NaN/inf reward) counts as
evaluated and worse than every reward: it is never proposed again and never
becomes the current architecture. A proposal never answered blocks only the
phase it belongs to; spares keep the search going.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from symbolic_nas.algorithms.base import Algorithm, Proposal, register
from symbolic_nas.algorithms.mutation import neighbours
from symbolic_nas.validation import Interval, validate_params

__all__ = ["LocalSearch", "unseen_random"]

#: Draws of a random architecture before an already seen one is accepted.
_MAX_DRAWS = 100


def unseen_random(algo: Algorithm, seen: Any) -> list[int]:
    """A uniformly random token sequence of ``algo.codec`` not in ``seen`` (a set of
    tuples), or, after :data:`_MAX_DRAWS` draws that were all seen, the last draw."""
    for _ in range(_MAX_DRAWS):
        tokens = algo.codec.random_tokens(algo.rng)
        if tuple(tokens) not in seen:
            return tokens
    return tokens


@register("local_search")
class LocalSearch(Algorithm):
    """Local search: best-improvement hill climbing with random restarts.

    Reference: C. White, S. Nolen and Y. Savani, "Exploring the Loss Landscape in
    Neural Architecture Search", UAI 2021 (arXiv:2005.02960).

    Default: ``num_init=10`` random architectures per climb's start, chosen on
    NAS-Bench-201 CIFAR-10 (``benchmarks/RESULTS.md``, hand-written section).

    Args:
        num_init: Random architectures evaluated to start each climb (the best
            one is the start), at least 1.
        seed: Seed of the algorithm's own RNG.

    Example:
        >>> import symbolic_nas as sn
        >>> from symbolic_nas import algorithms
        >>> codec = sn.encode({"a": sn.oneof([1, 2, 3]), "b": sn.oneof([4, 5, 6])})
        >>> algo = algorithms.get("local_search", num_init=2, seed=0)
        >>> algo.setup(codec, budget=9)
        >>> for _ in range(9):
        ...     p = algo.propose()
        ...     algo.feedback(p, float(sum(p.tokens)))
        >>> algo.best
        ([2, 2], 4.0)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **Algorithm._parameter_constraints,
        "num_init": [Interval(int, 1, None)],
    }

    def __init__(self, *, num_init: int = 10, seed: int | None = 0):
        validate_params(self._parameter_constraints, {"num_init": num_init})
        super().__init__(seed=seed)
        self.num_init = num_init

    # ------------------------------------------------------------------ state

    def _setup(self) -> None:
        self._results: dict[tuple[int, ...], float] = {}  # failed: -inf
        self._pending: dict[tuple[int, ...], int] = {}  # outstanding, with multiplicity
        self._phase = "init"  # "init" (random starts) or "climb" (neighbours)
        self._to_start = self.num_init  # random starts still to hand out
        self._starts: list[tuple[int, ...]] = []  # this climb's starts
        self._spares: list[tuple[int, ...]] = []  # spares since the climb started
        self._center: tuple[int, ...] | None = None
        self._queue: list[tuple[int, ...]] = []  # neighbours still to hand out
        self._neighbourhood: list[tuple[int, ...]] = []
        self._moves = 0
        self._climbs = 0

    @property
    def version(self) -> int:
        """Moves made so far (each to a better neighbour, or to a new start)."""
        return self._moves

    @property
    def best(self) -> tuple[list[int], float] | None:
        """The best architecture evaluated so far and its reward (None before any)."""
        finite = [(r, t) for t, r in self._results.items() if math.isfinite(r)]
        if not finite:
            return None
        reward, tokens = max(finite, key=lambda x: x[0])
        return list(tokens), reward

    def stats(self) -> dict[str, float]:
        out = {"climbs": float(self._climbs), "moves": float(self._moves)}
        if self._center is not None:
            out["center_reward"] = self._results[self._center]
        return out

    # ------------------------------------------------------------------ hooks

    def _propose(self) -> tuple[list[int], dict[str, Any] | None]:
        self._advance()
        seen = self._seen()
        if self._phase == "init" and self._to_start > 0:
            tokens = unseen_random(self, seen)
            self._to_start -= 1
            self._starts.append(tuple(tokens))
            role = "start"
        else:
            while self._queue and self._queue[0] in seen:
                self._queue.pop(0)
            if self._phase == "climb" and self._queue:
                tokens = list(self._queue.pop(0))
                role = "neighbour"
            else:  # waiting on outstanding results: a spare joins the next climb's starts
                tokens = unseen_random(self, seen)
                (self._starts if self._phase == "init" else self._spares).append(tuple(tokens))
                role = "spare"
        key = tuple(tokens)
        self._pending[key] = self._pending.get(key, 0) + 1
        return tokens, {"role": role, "climb": self._climbs}

    def _feedback(self, proposal: Proposal, reward: float) -> None:
        self._record(proposal, reward)

    def _failed(self, proposal: Proposal) -> None:
        self._record(proposal, -math.inf)

    def _record(self, proposal: Proposal, reward: float) -> None:
        key = tuple(proposal.tokens)
        left = self._pending.get(key, 0) - 1
        if left > 0:
            self._pending[key] = left
        else:
            self._pending.pop(key, None)
        # A duplicate (only once the space is exhausted) keeps its first result.
        self._results.setdefault(key, reward)
        self._advance()

    def _seen(self) -> set[tuple[int, ...]]:
        return set(self._results).union(self._pending)

    def _advance(self) -> None:
        """Moves on while the current phase is complete (all its results are in)."""
        while True:
            if self._phase == "init":
                if self._to_start > 0 or any(s in self._pending for s in self._starts):
                    return
                starts = [s for s in self._starts if math.isfinite(self._results.get(s, -math.inf))]
                if not starts:  # every start failed: draw new ones
                    self._restart()
                    continue
                best = max(starts, key=lambda s: self._results[s])
                self._move_to(best)
            else:
                if self._queue or any(n in self._pending for n in self._neighbourhood):
                    return
                assert self._center is not None
                known = [n for n in self._neighbourhood if n in self._results]
                if known:
                    best = max(known, key=lambda n: self._results[n])
                if known and self._results[best] > self._results[self._center]:
                    self._move_to(best)
                else:
                    self._restart()

    def _move_to(self, center: tuple[int, ...]) -> None:
        self._phase = "climb"
        self._center = center
        self._moves += 1
        found = neighbours(self.codec, list(center), self.rng)
        self.rng.shuffle(found)
        self._neighbourhood = [tuple(n) for n in found]
        seen = self._seen()
        self._queue = [n for n in self._neighbourhood if n not in seen]

    def _restart(self) -> None:
        self._phase = "init"
        self._climbs += 1
        self._center = None
        self._queue = []
        self._neighbourhood = []
        # The climb's spares are among the new starts; they count towards num_init.
        self._starts, self._spares = self._spares, []
        self._to_start = max(0, self.num_init - len(self._starts))

    def _state_dict(self) -> dict[str, Any]:
        return {
            "num_init": self.num_init,
            # A failed result (-inf) is saved as None.
            "results": [
                [list(t), r if math.isfinite(r) else None] for t, r in self._results.items()
            ],
            "pending": [[list(t), n] for t, n in self._pending.items()],
            "phase": self._phase,
            "to_start": self._to_start,
            "starts": [list(t) for t in self._starts],
            "spares": [list(t) for t in self._spares],
            "center": None if self._center is None else list(self._center),
            "queue": [list(t) for t in self._queue],
            "neighbourhood": [list(t) for t in self._neighbourhood],
            "moves": self._moves,
            "climbs": self._climbs,
        }

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        if state["num_init"] != self.num_init:
            raise ValueError(
                f"`num_init` must match the saved algorithm's ({state['num_init']!r}), "
                f"but got {self.num_init!r}"
            )

        def key(tokens: list[int]) -> tuple[int, ...]:
            out = tuple(int(t) for t in tokens)
            self.codec.validate(out)
            return out

        self._results = {key(t): -math.inf if r is None else float(r) for t, r in state["results"]}
        self._pending = {key(t): int(n) for t, n in state["pending"]}
        self._phase = str(state["phase"])
        self._to_start = int(state["to_start"])
        self._starts = [key(t) for t in state["starts"]]
        self._spares = [key(t) for t in state["spares"]]
        self._center = None if state["center"] is None else key(state["center"])
        self._queue = [key(t) for t in state["queue"]]
        self._neighbourhood = [key(t) for t in state["neighbourhood"]]
        self._moves = int(state["moves"])
        self._climbs = int(state["climbs"])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_init={self.num_init}, seed={self.seed})"
