"""The controller search's records: samples, the reward memory and the baseline's moments.

* :class:`Sample`: one architecture the controller drew (queued) or one with its
  reward (buffered for the next update).
* :class:`RewardMemory`: the mean reward of every rewarded architecture, which
  the search answers repeats from instead of handing them out again.
* :class:`Moments`: the bias-corrected moving averages behind the baseline and
  the advantage scale.

Each saves itself to, and loads itself from, the JSON-able lists and dicts of
the algorithm's ``state_dict``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

__all__ = ["Moments", "RewardMemory", "Sample"]


@dataclasses.dataclass(frozen=True)
class Sample:
    """An architecture drawn by the controller, with the policy that drew it.

    Attributes:
        tokens: The token sequence.
        log_prob: Its log-probability under the policy that drew it.
        version: That policy's version (number of updates before it).
        reward: The transformed reward, once it has one (buffered samples).

    Example:
        >>> from symbolic_nas.algorithms.controller import Sample
        >>> s = Sample([0, 2], -1.5, 3)
        >>> Sample.from_dict(s.to_dict()) == s
        True
        >>> s.to_dict()
        {'tokens': [0, 2], 'log_prob': -1.5, 'version': 3}
    """

    tokens: list[int]
    log_prob: float
    version: int
    reward: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (``reward`` only when it has one)."""
        out: dict[str, Any] = {
            "tokens": list(self.tokens),
            "log_prob": self.log_prob,
            "version": self.version,
        }
        if self.reward is not None:
            out["reward"] = self.reward
        return out

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Sample:
        """The inverse of :meth:`to_dict`."""
        reward = state.get("reward")
        return cls(
            tokens=[int(t) for t in state["tokens"]],
            log_prob=float(state["log_prob"]),
            version=int(state["version"]),
            reward=None if reward is None else float(reward),
        )


class RewardMemory:
    """The mean reward of every rewarded architecture.

    :meth:`recall` answers an architecture from memory; it stops answering once
    the memory holds every architecture of a finite space (so that a search that
    has seen everything is not stuck re-sampling).

    Args:
        space_size: Number of architectures of the space; ``math.inf`` (or None)
            when infinite.

    Example:
        >>> from symbolic_nas.algorithms.controller import RewardMemory
        >>> memory = RewardMemory(space_size=3)
        >>> memory.add([0], 1.0); memory.add([0], 2.0); memory.add([1], 5.0)
        >>> memory.recall([0]), memory.recall([2]), len(memory)
        (1.5, None, 2)
        >>> memory.add([2], 0.0)   # every architecture known: nothing is recalled
        >>> memory.recall([0]) is None
        True
    """

    def __init__(self, space_size: int | float | None):
        self.space_size = space_size
        self._entries: dict[tuple[int, ...], list[float]] = {}  # tokens -> [total, count]

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, tokens: Sequence[int], reward: float) -> None:
        """Counts one more reward of ``tokens``."""
        entry = self._entries.setdefault(tuple(tokens), [0.0, 0])
        entry[0] += reward
        entry[1] += 1

    def recall(self, tokens: Sequence[int]) -> float | None:
        """The mean reward of ``tokens``, or None when unknown or the space is exhausted."""
        entry = self._entries.get(tuple(tokens))
        if entry is None:
            return None
        if self.space_size is not None and len(self._entries) >= self.space_size:
            return None
        return entry[0] / entry[1]

    def means(self) -> list[tuple[tuple[int, ...], float]]:
        """``(tokens, mean reward)`` per architecture, in the order first rewarded."""
        return [(k, v[0] / v[1]) for k, v in self._entries.items()]

    def state(self) -> list[list[Any]]:
        """``[tokens, total, count]`` per architecture, in the order first rewarded."""
        return [[list(k), v[0], v[1]] for k, v in self._entries.items()]

    def load(self, state: list[list[Any]]) -> None:
        """Replaces the memory by a :meth:`state`."""
        self._entries = {
            tuple(int(t) for t in k): [float(total), int(count)] for k, total, count in state
        }


class Moments:
    """Bias-corrected exponential moving averages of rewards and squared advantages.

    Example:
        >>> from symbolic_nas.algorithms.controller.memory import Moments
        >>> m = Moments(decay=0.9)
        >>> m.baseline is None
        True
        >>> m.add(2.0); m.add(4.0)
        >>> round(m.baseline, 6), round(m.rms, 6)
        (3.052632, 2.0)
    """

    def __init__(self, decay: float):
        self.decay = decay
        self.mean_sum = 0.0
        self.mean_count = 0
        self.square_sum = 0.0
        self.square_count = 0

    @property
    def baseline(self) -> float | None:
        """The bias-corrected mean of the rewards so far (None before the first)."""
        if not self.mean_count:
            return None
        return self.mean_sum / (1 - self.decay**self.mean_count)

    @property
    def rms(self) -> float | None:
        """The bias-corrected root mean square of the advantages so far."""
        if not self.square_count:
            return None
        return math.sqrt(self.square_sum / (1 - self.decay**self.square_count))

    def add(self, reward: float) -> None:
        """Folds in one reward (its advantage against the baseline before it)."""
        baseline = self.baseline
        if baseline is not None:
            self.square_sum = (
                self.decay * self.square_sum + (1 - self.decay) * (reward - baseline) ** 2
            )
            self.square_count += 1
        self.mean_sum = self.decay * self.mean_sum + (1 - self.decay) * reward
        self.mean_count += 1

    def state(self) -> list[float]:
        return [self.mean_sum, self.mean_count, self.square_sum, self.square_count]

    def load(self, state: list[float]) -> None:
        self.mean_sum, self.square_sum = float(state[0]), float(state[2])
        self.mean_count, self.square_count = int(state[1]), int(state[3])
