"""Learning the Q-network: n-step transitions, double Q-learning, prioritised replay.

* **n-step returns** (Sutton 1988; as in Ape-X, Horgan et al., ICLR 2018):
  a transition ``(s_t, a_t, R, s_{t+n}, γ^n)`` with ``R = Σ_{k<n} γ^k r_{t+k}``.
  Episodes end only by their time limit, so every transition bootstraps, the
  last ones of an episode too (partial-episode bootstrapping, Pardo et al.,
  ICML 2018, as Cassimon et al. use it).
* **Double Q-learning** (van Hasselt et al., AAAI 2016): the online network picks
  the next move, the target network scores it; a state with no open move
  bootstraps 0.
* **Prioritised replay** (Schaul et al., ICLR 2016, proportional): sampling
  probability ``p_i^α / Σ p^α`` with α = 0.6 and importance weights
  ``(N · P(i))^-β`` with β = 0.4, normalised by their maximum (Ape-X's values).
"""

from __future__ import annotations

import collections
import copy
import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from symbolic_nas.algorithms.learned_search.network import QNetwork, collate

__all__ = [
    "DoubleQ",
    "NStep",
    "PrioritizedReplay",
    "Transition",
    "transition_from_state",
    "transition_to_state",
]

Observation = dict[str, np.ndarray]


@dataclasses.dataclass
class Transition:
    """An n-step transition: ``state``, ``action`` (flat ``position * vocab + token``),
    the discounted return ``reward``, the bootstrap state ``next_state`` and its
    discount ``discount`` (``γ^n``)."""

    state: Observation
    action: int
    reward: float
    next_state: Observation
    discount: float


class NStep:
    """Turns a stream of ``(state, action, reward)`` steps into n-step transitions.

    The state of the step ``n`` later is the bootstrap state, so a transition is
    emitted once ``n`` later steps exist.

    Example:
        >>> acc = NStep(n=2, gamma=0.5)
        >>> out = [acc.push({"s": i}, i, 1.0) for i in range(3)]
        >>> [len(o) for o in out]
        [0, 0, 1]
        >>> t = out[2][0]
        >>> (t.action, t.reward, t.next_state, t.discount)
        (0, 1.5, {'s': 2}, 0.25)
    """

    def __init__(self, n: int, gamma: float) -> None:
        self.n, self.gamma = n, gamma
        self.steps: collections.deque[tuple[Any, int, float]] = collections.deque()

    def push(self, state: Any, action: int, reward: float) -> list[Transition]:
        """Adds a step; returns the transition it completes (at most one)."""
        self.steps.append((state, action, reward))
        if len(self.steps) <= self.n:
            return []
        first, action0, _ = self.steps[0]
        ret = sum(self.gamma**k * self.steps[k][2] for k in range(self.n))
        self.steps.popleft()
        return [Transition(first, action0, ret, state, self.gamma**self.n)]

    def clear(self) -> None:
        self.steps.clear()


def _batch(transitions: Sequence[Transition]) -> tuple[dict[str, torch.Tensor], ...]:
    return collate([t.state for t in transitions]), collate([t.next_state for t in transitions])


class DoubleQ:
    """An online and a target network with Adam; computes TD errors and updates.

    Args:
        network: The online network (updated in place).
        lr: Adam's learning rate.
        target_every: Updates between copies of the online network to the target.
    """

    def __init__(self, network: QNetwork, *, lr: float = 1e-3, target_every: int = 100) -> None:
        self.network = network
        self.target = copy.deepcopy(network).requires_grad_(False)
        self.optimizer = torch.optim.Adam(network.parameters(), lr=lr)
        self.target_every = target_every
        self.updates = 0

    def _td(self, transitions: Sequence[Transition], target: QNetwork) -> torch.Tensor:
        states, nexts = _batch(transitions)
        q = self.network(states).flatten(1)
        actions = torch.tensor([t.action for t in transitions])
        chosen = q.gather(1, actions[:, None]).squeeze(1)
        with torch.no_grad():
            open_next = nexts["mask"].flatten(1).any(1)
            best = self.network(nexts).flatten(1).argmax(1)
            value = target(nexts).flatten(1).gather(1, best[:, None]).squeeze(1)
            value = torch.where(open_next, value, torch.zeros_like(value))
            rewards = torch.tensor([t.reward for t in transitions], dtype=torch.float32)
            discounts = torch.tensor([t.discount for t in transitions], dtype=torch.float32)
            goal = rewards + discounts * value
        return goal - chosen

    def priorities(self, transitions: Sequence[Transition]) -> np.ndarray:
        """|TD error| of each transition under the current networks (no update)."""
        with torch.no_grad():
            return self._td(transitions, self.target).abs().numpy() + 1e-3

    def update(
        self, transitions: Sequence[Transition], weights: np.ndarray
    ) -> tuple[float, np.ndarray]:
        """One Huber-loss step weighted by ``weights``; returns (loss, new |TD errors|)."""
        td = self._td(transitions, self.target)
        w = torch.as_tensor(weights, dtype=torch.float32)
        loss = (
            w * torch.nn.functional.huber_loss(td, torch.zeros_like(td), reduction="none")
        ).mean()
        self.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.network.parameters(), 10.0)
        self.optimizer.step()
        self.updates += 1
        if self.updates % self.target_every == 0:
            self.target.load_state_dict(self.network.state_dict())
        return float(loss.detach()), td.detach().abs().numpy() + 1e-3

    def state_dict(self) -> dict[str, Any]:
        return copy.deepcopy(
            {
                "network": self.network.state_dict(),
                "target": self.target.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "updates": self.updates,
            }
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.network.load_state_dict(state["network"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])


class PrioritizedReplay:
    """A bounded prioritised replay buffer (proportional; oldest evicted first).

    Example:
        >>> import numpy as np
        >>> replay = PrioritizedReplay(capacity=2, seed=0)
        >>> replay.add(["a", "b", "c"], np.array([1.0, 1.0, 5.0]))
        >>> len(replay), sorted(replay.items)
        (2, ['b', 'c'])
    """

    def __init__(
        self, capacity: int, *, alpha: float = 0.6, beta: float = 0.4, seed: int = 0
    ) -> None:
        self.capacity, self.alpha, self.beta = capacity, alpha, beta
        self.items: list[Any] = []
        self._priorities = np.zeros(capacity)
        self.rng = np.random.default_rng(seed)
        self._start = 0  # Ring position of the oldest item once full.

    def __len__(self) -> int:
        return len(self.items)

    @property
    def priorities(self) -> np.ndarray:
        """The priority of each item (a view)."""
        return self._priorities[: len(self.items)]

    def add(self, items: Sequence[Any], priorities: np.ndarray) -> None:
        for item, p in zip(items, priorities):
            if len(self.items) < self.capacity:
                self._priorities[len(self.items)] = p
                self.items.append(item)
            else:
                self.items[self._start] = item
                self._priorities[self._start] = p
                self._start = (self._start + 1) % self.capacity

    def sample(self, size: int) -> tuple[np.ndarray, list[Any], np.ndarray]:
        """(indices, items, importance weights) of ``size`` draws by priority."""
        scaled = self.priorities**self.alpha
        probs = scaled / scaled.sum()
        index = self.rng.choice(len(self.items), size=size, p=probs)
        weights = (len(self.items) * probs[index]) ** -self.beta
        return index, [self.items[i] for i in index], weights / weights.max()

    def update(self, index: np.ndarray, priorities: np.ndarray) -> None:
        self._priorities[index] = priorities

    def state_dict(self) -> dict[str, Any]:
        return {
            "items": [transition_to_state(t) for t in self.items],
            "priorities": torch.from_numpy(self.priorities.copy()),
            "start": self._start,
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.items = [transition_from_state(t) for t in state["items"]]
        self._priorities = np.zeros(self.capacity)
        self._priorities[: len(self.items)] = state["priorities"].numpy()
        self._start = int(state["start"])
        self.rng.bit_generator.state = state["rng"]


def _obs_to_tensors(obs: Observation) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in obs.items()}


def _obs_from_tensors(obs: dict[str, torch.Tensor]) -> Observation:
    return {k: v.numpy() for k, v in obs.items()}


def transition_to_state(t: Transition) -> dict[str, Any]:
    """A transition as tensors and floats (loads with ``torch.load(weights_only=True)``)."""
    return {
        "state": _obs_to_tensors(t.state),
        "action": t.action,
        "reward": t.reward,
        "next_state": _obs_to_tensors(t.next_state),
        "discount": t.discount,
    }


def transition_from_state(state: dict[str, Any]) -> Transition:
    """The inverse of :func:`transition_to_state`."""
    return Transition(
        _obs_from_tensors(state["state"]),
        int(state["action"]),
        float(state["reward"]),
        _obs_from_tensors(state["next_state"]),
        float(state["discount"]),
    )
