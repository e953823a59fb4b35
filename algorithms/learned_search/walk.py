"""One search episode as the agent sees it: a walk over the graph of architectures.

The state space is the search space (Cassimon et al. 2024): the agent stands on
the *current* architecture and an action is a move to one of its neighbours
(:func:`~symbolic_nas.algorithms.mutation.moves`: one active decision changed). What
the paper's summaries leave open is chosen here as a careful reimplementation
would, and is stated so:

* **Transition**: the chosen neighbour is evaluated (one query); the agent moves
  there when it beats the current architecture, else stays (a hill-climbing
  walk whose *order* of moves is learned). Neighbours already evaluated or
  pending are not offered again, so no query is wasted on a duplicate. When the
  current architecture has no unvisited neighbour left (a local optimum, fully
  explored), the walk restarts at a uniformly random unvisited architecture.
* **Reward (shaped)**: the improvement of the episode's best value, divided by
  the standard deviation of the values seen so far in the episode (0 when
  nothing improves), clipped at 3. Dividing by the spread makes the reward
  independent of the objective's units, so an agent trained on one objective
  reads another on the same scale.
* **Observation**: the current tokens with their decision indices (the
  transformer's input), and for every ``(position, token)`` the episode's
  statistics of the architectures evaluated with that token at that decision
  (whether any, their mean value as a z-score, how many) — these let one agent
  adapt within an episode to an objective it never saw — plus global features
  (current and best value as z-scores, the share of moves still open, how far
  the episode is).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from symbolic_nas.algorithms.mutation import Move, apply_move, moves
from symbolic_nas.space.codec import Codec

__all__ = ["NUM_FEATURES", "NUM_GLOBALS", "Walk", "vocab_of"]

#: Features per (position, token) and global features of an observation.
NUM_FEATURES = 4
NUM_GLOBALS = 4
#: Largest shaped reward of one step.
MAX_REWARD = 3.0
#: Tries to draw an unvisited random architecture before accepting a visited one.
RESTART_TRIES = 100


def vocab_of(codec: Codec) -> int:
    """The largest vocabulary of the codec's decisions (the action grid's width)."""
    return max(d.vocab_size for d in codec.decisions)


def _key(tokens: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(t) for t in tokens)


class Walk:
    """The state of one episode (see the module docstring).

    Args:
        codec: The space's codec.
        rng: Draws restarts and the tokens of decisions a move makes active.

    Example:
        >>> import random
        >>> import symbolic_nas as sn
        >>> codec = sn.encode({"a": sn.oneof([1, 2, 3]), "b": sn.oneof([4, 5])})
        >>> walk = Walk(codec, random.Random(0))
        >>> first = walk.restart_tokens()
        >>> walk.observe(first, 1.0)
        0.0
        >>> len(walk.candidates())
        3
    """

    def __init__(self, codec: Codec, rng: random.Random) -> None:
        self.codec = codec
        self.rng = rng
        self.vocab = vocab_of(codec)
        n = len(codec.decisions)
        self.sums = np.zeros((n, self.vocab))
        self.counts = np.zeros((n, self.vocab))
        self.values: dict[tuple[int, ...], float] = {}
        self.pending: set[tuple[int, ...]] = set()
        self.current: list[int] | None = None
        self.current_value = -math.inf
        self.best = -math.inf
        self._total = 0.0
        self._squares = 0.0
        self._neighbours: dict[Move, list[int]] | None = None

    # ------------------------------------------------------------------ dynamics

    @property
    def num_observed(self) -> int:
        return len(self.values)

    def seen(self, tokens: Sequence[int]) -> bool:
        """Whether ``tokens`` was evaluated or is being evaluated."""
        key = _key(tokens)
        return key in self.values or key in self.pending

    def restart_tokens(self) -> list[int]:
        """A uniformly random architecture, unvisited when one is found in a few tries."""
        tokens = self.codec.random_tokens(self.rng)
        for _ in range(RESTART_TRIES):
            if not self.seen(tokens):
                break
            tokens = self.codec.random_tokens(self.rng)
        return tokens

    def candidates(self) -> dict[Move, list[int]]:
        """The moves from the current architecture to neighbours not yet seen."""
        if self.current is None:
            return {}
        if self._neighbours is None:
            decisions, found = moves(self.codec, self.current)
            self._neighbours = {
                m: apply_move(self.codec, self.current, m, self.rng, decisions) for m in found
            }
        return {m: n for m, n in self._neighbours.items() if not self.seen(n)}

    def propose(self, tokens: Sequence[int]) -> None:
        """Marks ``tokens`` as being evaluated (it is not offered again)."""
        self.pending.add(_key(tokens))

    def observe(self, tokens: Sequence[int], value: float, *, restart: bool = False) -> float:
        """Records an evaluation; returns the shaped reward (see the module docstring).

        The walk moves to ``tokens`` when it beats the current architecture, when
        there is none yet, or when it was a restart.
        """
        key = _key(tokens)
        self.pending.discard(key)
        if key in self.values:  # Answered twice (a duplicate proposal): nothing new.
            return 0.0
        self.values[key] = value
        self._total += value
        self._squares += value * value
        for d, t in zip(self.codec.trace(tokens), tokens):
            self.sums[d, t] += value
            self.counts[d, t] += 1
        before = self.best
        self.best = max(self.best, value)
        if restart or self.current is None or value > self.current_value:
            self.current, self.current_value = list(key), value
            self._neighbours = None
        spread = self._std()
        if not math.isfinite(before) or spread <= 0:
            return 0.0
        return min(MAX_REWARD, max(0.0, value - before) / spread)

    def _std(self) -> float:
        n = len(self.values)
        if n < 2:
            return 0.0
        mean = self._total / n
        return math.sqrt(max(0.0, self._squares / n - mean * mean))

    def _z(self, value: float) -> float:
        spread = self._std()
        if spread <= 0 or not math.isfinite(value):
            return 0.0
        return max(-5.0, min(5.0, (value - self._total / len(self.values)) / spread))

    def state_dict(self) -> dict[str, Any]:
        """The walk as lists, floats and tensors (loads with ``weights_only=True``)."""
        import torch

        return {
            "values": [[list(k), v] for k, v in self.values.items()],
            "pending": [list(k) for k in sorted(self.pending)],
            "current": None if self.current is None else list(self.current),
            "current_value": self.current_value,
            "best": self.best,
            "total": self._total,
            "squares": self._squares,
            "sums": torch.from_numpy(self.sums.copy()),
            "counts": torch.from_numpy(self.counts.copy()),
            "neighbours": None
            if self._neighbours is None
            else [[list(m), n] for m, n in self._neighbours.items()],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores :meth:`state_dict`."""
        self.values = {_key(k): float(v) for k, v in state["values"]}
        self.pending = {_key(k) for k in state["pending"]}
        self.current = None if state["current"] is None else [int(t) for t in state["current"]]
        self.current_value = float(state["current_value"])
        self.best = float(state["best"])
        self._total = float(state["total"])
        self._squares = float(state["squares"])
        self.sums = state["sums"].numpy().copy()
        self.counts = state["counts"].numpy().copy()
        found = state["neighbours"]
        self._neighbours = (
            None if found is None else {(int(m[0]), int(m[1])): list(n) for m, n in found}
        )

    # ------------------------------------------------------------------ observation

    def observation(self, open_moves: Sequence[Move], horizon: int) -> dict[str, np.ndarray]:
        """The network's input for the current architecture (see the module docstring).

        Args:
            open_moves: The moves that may be taken (their mask is True).
            horizon: The episode's nominal length, for the progress feature.

        Returns:
            ``tokens`` (L,), ``decisions`` (L,), ``features`` (L, V, NUM_FEATURES),
            ``globals`` (NUM_GLOBALS,) and ``mask`` (L, V), as numpy arrays.
        """
        if self.current is None:
            raise RuntimeError("the walk has no current architecture yet")
        tokens = np.asarray(self.current, dtype=np.int64)
        decisions = np.asarray(self.codec.trace(self.current), dtype=np.int64)
        counts = self.counts[decisions]  # (L, V)
        sums = self.sums[decisions]
        n = len(self.values)
        spread = self._std()
        mean = self._total / n if n else 0.0
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(counts > 0, sums / np.maximum(counts, 1), mean)
        z = np.clip((means - mean) / spread, -5, 5) if spread > 0 else np.zeros_like(means)
        features = np.zeros((len(tokens), self.vocab, NUM_FEATURES), dtype=np.float32)
        features[..., 0] = counts > 0
        features[..., 1] = np.where(counts > 0, z, 0.0)
        features[..., 2] = np.log1p(counts) / 3.0
        features[np.arange(len(tokens)), tokens, 3] = 1.0
        mask = np.zeros((len(tokens), self.vocab), dtype=bool)
        for position, token in open_moves:
            mask[position, token] = True
        total_moves = len(self._neighbours) if self._neighbours else 1
        glob = np.asarray(
            [
                self._z(self.current_value),
                self._z(self.best),
                len(open_moves) / max(1, total_moves),
                min(1.0, n / max(1, horizon)),
            ],
            dtype=np.float32,
        )
        return {
            "tokens": tokens,
            "decisions": decisions,
            "features": features,
            "globals": glob,
            "mask": mask,
        }


def observation_to_state(obs: dict[str, np.ndarray]) -> dict[str, Any]:
    """An observation as plain lists (JSON-able, for ``state_dict``)."""
    return {k: v.tolist() for k, v in obs.items()}


def observation_from_state(state: dict[str, Any]) -> dict[str, np.ndarray]:
    """The inverse of :func:`observation_to_state`."""
    types = {"tokens": np.int64, "decisions": np.int64, "mask": bool}
    return {k: np.asarray(v, dtype=types.get(k, np.float32)) for k, v in state.items()}
