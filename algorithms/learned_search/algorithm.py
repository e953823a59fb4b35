"""``learned_search``: an agent that learns to search (Cassimon, Mercelis & Mets, 2024).

Reference: K. Cassimon, S. Mercelis and P. Mets, "Scalable Reinforcement
Learning-based Neural Architecture Search", Neural Computing and Applications
(2024), arXiv:2410.01431. NAS is a walk over the graph of architectures; a
transformer Q-network trained with Ape-X (Horgan et al., ICLR 2018) picks the
neighbour to visit next, so a trained agent can search again on another task.
The paper's code is not public; the walk's transition, reward and observation
chosen here are described in :mod:`~symbolic_nas.algorithms.learned_search.walk`,
the network in :mod:`~symbolic_nas.algorithms.learned_search.network`, its
learning in :mod:`~symbolic_nas.algorithms.learned_search.learning` and its
distributed training in :mod:`~symbolic_nas.algorithms.learned_search.apex`.
"""

from __future__ import annotations

import os
import random
from typing import Any, ClassVar

import numpy as np
import torch

from symbolic_nas.algorithms.base import Algorithm, Proposal, register
from symbolic_nas.algorithms.controller.search import one_torch_thread
from symbolic_nas.algorithms.learned_search.agent import (
    DEFAULT_AGENT,
    Agent,
    load_agent,
    new_agent,
)
from symbolic_nas.algorithms.learned_search.learning import DoubleQ, NStep, PrioritizedReplay
from symbolic_nas.algorithms.learned_search.network import QNetwork, collate
from symbolic_nas.algorithms.learned_search.walk import (
    Walk,
    observation_from_state,
    observation_to_state,
)
from symbolic_nas.algorithms.mutation import Move
from symbolic_nas.constraints import InstanceOf
from symbolic_nas.validation import Interval, validate_params

__all__ = ["LearnedSearch", "choose_move"]


def choose_move(
    network: QNetwork,
    walk: Walk,
    candidates: dict[Move, list[int]],
    *,
    horizon: int,
    epsilon: float,
    rng: random.Random,
) -> tuple[Move, dict[str, np.ndarray], int]:
    """ε-greedy choice among ``candidates``: (move, observation, flat action index).

    Greedy ties go to the first move in position order.
    """
    open_moves = sorted(candidates)
    obs = walk.observation(open_moves, horizon)
    if epsilon > 0 and rng.random() < epsilon:
        move = open_moves[rng.randrange(len(open_moves))]
    else:
        with torch.inference_mode(), one_torch_thread():
            q = network(collate([obs]))[0].numpy()
        flat = int(np.argmax(q))
        move = (flat // q.shape[1], flat % q.shape[1])
    return move, obs, move[0] * walk.vocab + move[1]


_SHIPPED_CACHE: dict[str, Agent] = {}


@register("learned_search")
class LearnedSearch(Algorithm):
    """A learned search agent walking from neighbour to neighbour.

    With ``agent=None`` it uses the shipped agent (``"nb201-c10"``, trained by
    Ape-X on the NAS-Bench-201 CIFAR-10 table) on a space whose decisions match
    it, and on any other space starts from untrained weights and learns online.

    Args:
        agent: A shipped agent's name, the path of an agent file
            (:func:`~symbolic_nas.algorithms.learned_search.save_agent`), or None.
        online: Whether to keep learning from the rewards of this search (double
            Q-learning with n-step returns over a prioritised replay of its own
            transitions); None learns online when the agent is untrained.
        epsilon: ε of ε-greedy moves while learning online (greedy otherwise).
        gamma: Discount of the shaped rewards.
        n_step: Steps of the n-step returns.
        lr: Adam's learning rate online.
        batch_size: Transitions per online update.
        updates_per_step: Online updates after each answered move.
        replay_size: Capacity of the online replay buffer.
        horizon: The episode length the progress feature counts against (the
            shipped agent was trained on episodes of 100 queries). It does not
            follow the budget, so a search read early is the same search.
        seed: Seed of the walk, ε and (for an untrained agent) the initial weights.

    Raises:
        FileNotFoundError: ``agent`` names no shipped agent and no file (at ``setup``).
        ValueError: The agent file is corrupt, or was trained on a space with other
            decisions (at ``setup``).

    Example:
        >>> import symbolic_nas as sn
        >>> from symbolic_nas import algorithms
        >>> codec = sn.encode({"a": sn.oneof([1, 2, 3]), "b": sn.oneof([4, 5])})
        >>> algo = algorithms.get("learned_search", seed=0)
        >>> algo.setup(codec, budget=5)
        >>> for _ in range(5):
        ...     p = algo.propose()
        ...     algo.feedback(p, float(sum(p.tokens)))
        >>> algo.trained, algo.online
        (False, True)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **Algorithm._parameter_constraints,
        "agent": [InstanceOf((str, os.PathLike)), None],
        "online": [InstanceOf(bool), None],
        "epsilon": [Interval(float, 0, 1)],
        "gamma": [Interval(float, 0, 1)],
        "n_step": [Interval(int, 1, None)],
        "lr": [Interval(float, 0, None, closed="neither")],
        "batch_size": [Interval(int, 1, None)],
        "updates_per_step": [Interval(int, 0, None)],
        "replay_size": [Interval(int, 1, None)],
        "horizon": [Interval(int, 1, None)],
    }

    def __init__(
        self,
        *,
        agent: str | os.PathLike[str] | None = None,
        online: bool | None = None,
        epsilon: float = 0.1,
        gamma: float = 0.9,
        n_step: int = 3,
        lr: float = 1e-3,
        batch_size: int = 32,
        updates_per_step: int = 1,
        replay_size: int = 5000,
        horizon: int = 100,
        seed: int | None = 0,
    ):
        validate_params(
            self._parameter_constraints,
            {
                "agent": agent, "online": online, "epsilon": epsilon, "gamma": gamma,
                "n_step": n_step, "lr": lr, "batch_size": batch_size,
                "updates_per_step": updates_per_step, "replay_size": replay_size,
                "horizon": horizon,
            },
        )  # fmt: skip
        super().__init__(seed=seed)
        self.agent_name = None if agent is None else os.fspath(agent)
        self._online_option = online
        self.epsilon = float(epsilon)
        self.gamma = float(gamma)
        self.n_step = n_step
        self.lr = float(lr)
        self.batch_size = batch_size
        self.updates_per_step = updates_per_step
        self.replay_size = replay_size
        self.horizon = horizon

    # ------------------------------------------------------------------ setup

    def _load(self) -> tuple[Agent, bool]:
        """The agent to use and whether it is trained."""
        codec = self.codec
        if self.agent_name is not None:
            agent = load_agent(self.agent_name)
            agent.check_space(codec)
            return agent, True
        if DEFAULT_AGENT not in _SHIPPED_CACHE:
            _SHIPPED_CACHE[DEFAULT_AGENT] = load_agent(DEFAULT_AGENT)
        shipped = _SHIPPED_CACHE[DEFAULT_AGENT]
        if shipped.fits(codec):
            fresh = new_agent(codec, seed=0, **_shape(shipped.network))
            fresh.network.load_state_dict(shipped.network.state_dict())
            fresh.info, fresh.source = shipped.info, DEFAULT_AGENT
            return fresh, True
        return new_agent(codec, seed=self.seed), False

    def _setup(self) -> None:
        self._agent, self.trained = self._load()
        self.online = (not self.trained) if self._online_option is None else self._online_option
        self._walk = Walk(self.codec, self.rng)
        self._moves: dict[int, dict[str, Any]] = {}
        self._learner = DoubleQ(self._agent.network, lr=self.lr, target_every=50)
        self._replay = PrioritizedReplay(self.replay_size, seed=self.seed or 0)
        self._nstep = NStep(self.n_step, self.gamma)
        self._losses: list[float] = []

    @property
    def network(self) -> QNetwork:
        """The Q-network in use."""
        return self._agent.network

    @property
    def version(self) -> int:
        return self._learner.updates

    # ------------------------------------------------------------------ search

    def _propose(self) -> tuple[list[int], dict[str, Any] | None]:
        walk = self._walk
        candidates = walk.candidates()
        if not candidates:
            tokens = walk.restart_tokens()
            walk.propose(tokens)
            self._moves[self._next_id] = {"restart": True}
            return tokens, {"restart": True}
        epsilon = self.epsilon if self.online else 0.0
        move, obs, action = choose_move(
            self.network, walk, candidates, horizon=self.horizon, epsilon=epsilon, rng=self.rng
        )
        tokens = candidates[move]
        walk.propose(tokens)
        self._moves[self._next_id] = {"obs": obs, "action": action}
        return list(tokens), {"move": list(move)}

    def _feedback(self, proposal: Proposal, reward: float) -> None:
        step = self._moves.pop(proposal.id)
        shaped = self._walk.observe(proposal.tokens, reward, restart="restart" in step)
        if not self.online or "obs" not in step:
            return
        transitions = self._nstep.push(step["obs"], step["action"], shaped)
        if transitions:
            top = float(self._replay.priorities.max()) if len(self._replay) else 1.0
            self._replay.add(transitions, np.full(len(transitions), top))
        if len(self._replay) < self.batch_size:
            return
        with one_torch_thread():
            for _ in range(self.updates_per_step):
                index, batch, weights = self._replay.sample(self.batch_size)
                loss, errors = self._learner.update(batch, weights)
                self._replay.update(index, errors)
                self._losses.append(loss)

    def _failed(self, proposal: Proposal) -> None:
        # The architecture stays marked as seen, so it is not proposed again.
        self._moves.pop(proposal.id, None)

    def stats(self) -> dict[str, float]:
        out = {"replay": float(len(self._replay)), "updates": float(self._learner.updates)}
        if self._losses:
            out["loss"] = float(np.mean(self._losses[-20:]))
        return out

    # ------------------------------------------------------------------ state

    def _state_dict(self) -> dict[str, Any]:
        moves = {
            str(k): (
                {"restart": True}
                if "restart" in v
                else {"obs": observation_to_state(v["obs"]), "action": v["action"]}
            )
            for k, v in self._moves.items()
        }
        nstep = [[observation_to_state(s), a, r] for s, a, r in self._nstep.steps]
        return {
            "walk": self._walk.state_dict(),
            "moves": moves,
            "learner": self._learner.state_dict(),
            "replay": self._replay.state_dict(),
            "nstep": nstep,
            "losses": list(self._losses[-20:]),
        }

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        self._walk.load_state_dict(state["walk"])
        self._moves = {
            int(k): (
                {"restart": True}
                if "restart" in v
                else {"obs": observation_from_state(v["obs"]), "action": int(v["action"])}
            )
            for k, v in state["moves"].items()
        }
        self._learner.load_state_dict(state["learner"])
        self._replay.load_state_dict(state["replay"])
        self._nstep.clear()
        for s, a, r in state["nstep"]:
            self._nstep.steps.append((observation_from_state(s), int(a), float(r)))
        self._losses = [float(x) for x in state["losses"]]

    def __repr__(self) -> str:
        return f"LearnedSearch(agent={self.agent_name!r}, seed={self.seed})"


def _shape(network: QNetwork) -> dict[str, int]:
    c = network.config
    return {"dim": c.dim, "heads": c.heads, "layers": c.layers}
