"""Random walk: move to a uniformly random neighbour, again and again.

The random-walk baseline of Cassimon, Mercelis & Mets (2024, arXiv:2410.01431),
who compare their learned search agent with random search, random walks and
local search; random walks over the architecture graph are the classic
exploration baseline (e.g. White, Nolen & Savani, UAI 2021, use them to study
the loss landscape of NAS). Each proposal is a uniformly random neighbour of the
last proposed architecture (one active decision changed,
:func:`~symbolic_nas.algorithms.mutation.labelled_neighbours`), whatever its reward. So that a
query is never spent twice, neighbours already proposed are skipped; a walk
with no unproposed neighbour left jumps to a uniformly random unproposed
architecture (when a few random draws find one).
"""

from __future__ import annotations

from typing import Any

from symbolic_nas.algorithms.base import Algorithm, register
from symbolic_nas.algorithms.mutation import labelled_neighbours

__all__ = ["RandomWalk"]

_JUMP_TRIES = 100


@register("random_walk")
class RandomWalk(Algorithm):
    """A random walk over the graph of architectures (neighbours differ in one decision).

    Reference: the random-walk baseline of K. Cassimon, S. Mercelis and P. Mets,
    "Scalable Reinforcement Learning-based Neural Architecture Search", Neural
    Computing and Applications 2024 (arXiv:2410.01431).

    Args:
        seed: Seed of the walk.

    Example:
        >>> import symbolic_nas as sn
        >>> from symbolic_nas import algorithms
        >>> codec = sn.encode({"a": sn.oneof([1, 2, 3]), "b": sn.oneof([4, 5])})
        >>> walk = algorithms.get("random_walk", seed=0)
        >>> walk.setup(codec)
        >>> first, second = walk.propose(), walk.propose()
        >>> sum(x != y for x, y in zip(first.tokens, second.tokens))
        1
    """

    learns = False

    def _setup(self) -> None:
        self._seen: set[tuple[int, ...]] = set()
        self._last: list[int] | None = None

    def _propose(self) -> tuple[list[int], dict[str, Any] | None]:
        options = []
        if self._last is not None:
            options = [
                n for _, n in labelled_neighbours(self.codec, self._last, self.rng)
                if tuple(n) not in self._seen
            ]  # fmt: skip
        jump = not options
        if jump:
            tokens = self.codec.random_tokens(self.rng)
            for _ in range(_JUMP_TRIES):
                if tuple(tokens) not in self._seen:
                    break
                tokens = self.codec.random_tokens(self.rng)
        else:
            tokens = options[self.rng.randrange(len(options))]
        self._seen.add(tuple(tokens))
        self._last = list(tokens)
        return list(tokens), {"jump": True} if jump else None

    def _state_dict(self) -> dict[str, Any]:
        return {"seen": [list(t) for t in sorted(self._seen)], "last": self._last}

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        self._seen = {tuple(int(x) for x in t) for t in state["seen"]}
        self._last = None if state["last"] is None else [int(x) for x in state["last"]]
