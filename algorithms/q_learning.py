"""MetaQNN: tabular Q-learning over token sequences (Baker et al., ICLR 2017).

MetaQNN builds a network layer by layer: the state is the layer just added
(its type and parameters, at its depth), an action picks the next layer, and
an ε-greedy agent learns Q-values from each trained model's accuracy, given
only at the end. Over any token space this becomes:

* **State**: the decision just made and the token chosen there, ``(d, t)``, or
  the start state before the first token. It is the analogue of MetaQNN's
  layer state: decision indices are positions in PyGlove's decision tree, so
  ``d`` carries the depth and the kind of choice, ``t`` the choice itself. The
  state determines which decision comes next (``codec.next_table[d, t]``), and
  unlike "next decision + previous token" it keeps apart two branches of a
  conditional space that join on the same decision with the same token value.
  A longer history would multiply the table by the vocabulary per extra token
  while MetaQNN conditions on one layer; when this state was chosen, histories
  of two and three tokens and the whole prefix were tried on NAS-Bench-201 and
  on additive toys at 100–1,000 trials and none learned faster. A limit comes
  with it (and with MetaQNN's own state): with γ = 1 and the reward only at the
  end, a token's credit reaches back only as far as the state remembers it, so
  at convergence the greedy walk has learned the last decisions best; earlier
  ones are learned while the Q-values still move. The constraints that span several
  decisions (distinct/sorted ``manyof`` picks, exact-``k`` anchors) are not in
  the state: they are applied as masks, so only valid tokens are ever chosen
  or maximised over.
* **Action**: a valid token at the next decision. Q-values start at
  ``initial_q`` (MetaQNN's 0.5, "around the performance of an average model;
  better to undershoot").
* **Sampling**: at each step, with probability ε a uniformly random valid
  token, else the greedy token (ties broken at random).
* **Learning**: reward 0 on every transition except the last, which gets the
  model's reward; ``Q[s][a] += α (r + γ max_a' Q[s'][a'] − Q[s][a])`` with
  α = 0.01 and γ = 1, run backwards from the terminal transition. After each
  finished model it joins the experience memory and ``replays_per_model``
  (128) models drawn uniformly from the memory are replayed (Baker et al.'s
  Algorithm 1 and reference code).
* **Duplicates**: a sampled model that already has a reward is not handed out
  again: it is answered from memory (it joins the memory again and 128 replays
  follow, as the reference server does) and the agent samples again. A sampled
  model that is still being evaluated is not handed out twice either: when its
  reward comes, it joins the memory once per time it was sampled. After
  ``max_resamples`` duplicates in a row, or at once when every model of a
  finite space is known, a uniformly random model is handed out (one not yet
  known when such is found), so ``propose`` never loops forever.
* **ε schedule**: counted in *unique* models handed out. The paper's schedule
  is 1,500 models at ε = 1.0, then 100 each at 0.9, 0.8 and 0.7 and 150 each at
  0.6 … 0.1 (2,700 models; ``preset="baker_2017"``). That barely leaves the
  random phase in the 100–1,000 trials users run, so by default the schedule
  keeps the paper's shape scaled to ``budget``: 55.6 % of the budget random,
  then the same steps down to 0.1, each the paper's share of the budget.
  Without a budget it is the paper's schedule divided by ten (270 models: 150
  random, 10 each at 0.9–0.7, 15 each at 0.6–0.1), which reaches ε = 0.1
  within a few hundred trials. After the schedule ε stays at its last value.

The reference server counts unique models *trained* per ε; counting those
handed out is the same in sequential runs and keeps the schedule aligned with
the trial budget when workers run concurrently or trials fail.

Failure policy: a failed proposal (``None``/NaN/inf) gives no learning signal;
it is forgotten, so the model may be proposed again later.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

from symbolic_nas.algorithms.base import Algorithm, Proposal, register
from symbolic_nas.validation import (
    Interval,
    Options,
    Satisfies,
    SequenceOf,
    check,
    parameter_error,
    validate_params,
)

__all__ = ["BAKER_2017_SCHEDULE", "QLearning", "scaled_schedule"]

#: The paper's ε schedule: (ε, number of unique models at that ε).
BAKER_2017_SCHEDULE: tuple[tuple[float, int], ...] = (
    (1.0, 1500),
    (0.9, 100),
    (0.8, 100),
    (0.7, 100),
    (0.6, 150),
    (0.5, 150),
    (0.4, 150),
    (0.3, 150),
    (0.2, 150),
    (0.1, 150),
)
_PRESETS = {"baker_2017": BAKER_2017_SCHEDULE}
#: Models in the default schedule when no budget is known (the paper's / 10).
NOMINAL_BUDGET = 270


def scaled_schedule(budget: int) -> list[tuple[float, int]]:
    """The paper's ε schedule scaled to ``budget`` unique models.

    Each step gets its share of the paper's 2,700 models, rounded by largest
    remainder so the counts add up to ``budget`` exactly.

    Example:
        >>> from symbolic_nas.algorithms.q_learning import scaled_schedule
        >>> scaled_schedule(270)[:4]
        [(1.0, 150), (0.9, 10), (0.8, 10), (0.7, 10)]
        >>> sum(n for _, n in scaled_schedule(100))
        100
    """
    check("budget", budget, [Interval(int, 1, None)])
    total = sum(n for _, n in BAKER_2017_SCHEDULE)
    exact = [n * budget / total for _, n in BAKER_2017_SCHEDULE]
    counts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: budget - sum(counts)]:
        counts[i] += 1
    return [(eps, n) for (eps, _), n in zip(BAKER_2017_SCHEDULE, counts)]


_EPSILON = Interval(float, 0, 1)
_COUNT = Interval(int, 0, None)


def _is_step(pair: Any) -> bool:
    return (
        isinstance(pair, (tuple, list))
        and len(pair) == 2
        and _EPSILON.is_satisfied_by(pair[0])
        and _COUNT.is_satisfied_by(pair[1])
    )


_STEP = Satisfies(_is_step, "an (epsilon in [0, 1], count >= 0) pair", invalid=[(1.5, 3)])
_SCHEDULE = SequenceOf(
    _STEP,
    min_len=1,
    description="a non-empty sequence of (epsilon in [0, 1], count >= 0) pairs",
)


# A model's steps, last first: (its state's Q-row, its token, the valid tokens or None
# for all). Rows are the Q-table's own lists, so updates through them update the table.
_Trajectory = list[tuple[list[float], int, tuple[int, ...] | None]]


@register("q_learning")
class QLearning(Algorithm):
    """MetaQNN's ε-greedy tabular Q-learning with experience replay.

    Reference: B. Baker, O. Gupta, N. Naik and R. Raskar, "Designing Neural
    Network Architectures using Reinforcement Learning", ICLR 2017
    (arXiv:1611.02167); reference code ``bowenbaker/metaqnn``. See the module
    docstring for the state, the schedule and how duplicates are handled.

    Args:
        epsilon_schedule: ``(epsilon, unique models)`` pairs; None scales the
            paper's schedule to the budget (see the module docstring).
        preset: ``"baker_2017"`` for the paper's absolute schedule (1,500 random
            models first). Not together with ``epsilon_schedule``.
        learning_rate: Q-learning rate α, in (0, 1].
        discount: Discount factor γ, in [0, 1].
        replays_per_model: Models replayed from memory after each finished one.
        initial_q: The initial Q-value of every state-action pair.
        max_resamples: Duplicates sampled in a row before a random model is
            handed out instead.
        seed: Seed of the algorithm's own RNG.

    Proposals carry ``meta={"epsilon": ε}``, plus ``"fallback": True`` when the
    guard against endless duplicates handed out a random model.

    Example:
        >>> import symbolic_nas as sn
        >>> from symbolic_nas import algorithms
        >>> codec = sn.encode({"a": sn.oneof([1, 2, 3]), "b": sn.oneof([4, 5, 6])})
        >>> algo = algorithms.get("q_learning", seed=0)
        >>> algo.setup(codec, budget=20)
        >>> algo.schedule[0]
        (1.0, 11)
        >>> seen = set()
        >>> for _ in range(9):
        ...     p = algo.propose()
        ...     algo.feedback(p, p.tokens[0] / 2)
        ...     seen.add(tuple(p.tokens))
        >>> len(seen)  # a model already evaluated is never handed out again
        9
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **Algorithm._parameter_constraints,
        "epsilon_schedule": [_SCHEDULE, None],
        "preset": [Options(sorted(_PRESETS)), None],
        "learning_rate": [Interval(float, 0, 1, closed="right")],
        "discount": [Interval(float, 0, 1)],
        "replays_per_model": [Interval(int, 0, None)],
        "initial_q": [Interval(float, None, None, closed="neither")],
        "max_resamples": [Interval(int, 1, None)],
    }

    def __init__(
        self,
        *,
        epsilon_schedule: Sequence[tuple[float, int]] | None = None,
        preset: str | None = None,
        learning_rate: float = 0.01,
        discount: float = 1.0,
        replays_per_model: int = 128,
        initial_q: float = 0.5,
        max_resamples: int = 100,
        seed: int | None = 0,
    ):
        validate_params(
            self._parameter_constraints,
            {
                "epsilon_schedule": epsilon_schedule, "preset": preset,
                "learning_rate": learning_rate, "discount": discount,
                "replays_per_model": replays_per_model, "initial_q": initial_q,
                "max_resamples": max_resamples,
            },
        )  # fmt: skip
        if preset is not None and epsilon_schedule is not None:
            raise parameter_error(
                "epsilon_schedule", "None when `preset` is given", epsilon_schedule
            )
        if preset is not None:
            epsilon_schedule = _PRESETS[preset]
        super().__init__(seed=seed)
        self.preset = preset
        self.epsilon_schedule = (
            None
            if epsilon_schedule is None
            else [(float(eps), int(n)) for eps, n in epsilon_schedule]
        )
        self.learning_rate = float(learning_rate)
        self.discount = float(discount)
        self.replays_per_model = replays_per_model
        self.initial_q = float(initial_q)
        self.max_resamples = max_resamples

    # ------------------------------------------------------------------ public

    @property
    def schedule(self) -> list[tuple[float, int]]:
        """The ε schedule in use: ``(epsilon, unique models)`` pairs."""
        return list(self._schedule)

    @property
    def epsilon(self) -> float:
        """The ε of the next proposal."""
        n = len(self._seen)
        for eps, count in self._schedule:
            if n < count:
                return eps
            n -= count
        return self._schedule[-1][0]

    @property
    def version(self) -> int:
        """Number of finished models learned from (each followed by replays)."""
        return self._updates

    def stats(self) -> dict[str, float]:
        return {
            "epsilon": self.epsilon,
            "unique_models": float(len(self._seen)),
            "memory": float(len(self._memory)),
        }

    def q_values(self, prefix: Sequence[int]) -> list[float]:
        """The Q-values of the tokens at the decision after ``prefix`` (a copy).

        Example:
            >>> import symbolic_nas as sn
            >>> from symbolic_nas import algorithms
            >>> algo = algorithms.get("q_learning", seed=0)
            >>> algo.setup(sn.encode({"a": sn.oneof([1, 2]), "b": sn.oneof([3, 4])}))
            >>> algo.q_values([1])
            [0.5, 0.5]
        """
        if self.codec.next_decision(prefix) is None:
            raise ValueError(
                f"`prefix` must leave a decision to make, but {list(prefix)!r} is complete"
            )
        state = 0
        walker = self.codec.walker()
        for token in prefix:
            state = self._base[walker.decision] + token
            walker.push(token)
        return list(self._q[state])

    # ------------------------------------------------------------------ hooks

    def _setup(self) -> None:
        codec = self.codec
        if self.epsilon_schedule is not None:
            self._schedule = list(self.epsilon_schedule)
        else:
            self._schedule = scaled_schedule(self.budget or NOMINAL_BUDGET)
        self._space_size = codec.space_size
        end = codec.num_decisions
        vocab = [int(v) for v in codec.vocab_sizes]
        # State 0 is the start; state base[d] + t is "token t chosen at decision d".
        self._base: list[int] = []
        following = [codec.start]
        for d, size in enumerate(vocab):
            self._base.append(len(following))
            following += [int(codec.next_table[d, t]) for t in range(size)]
        self._q: list[list[float]] = [
            [] if nxt == end else [self.initial_q] * vocab[nxt] for nxt in following
        ]
        self._vocab_after = [len(row) for row in self._q]
        self._seen: dict[tuple[int, ...], None] = {}  # every model handed out, in order
        self._rewards: dict[tuple[int, ...], float] = {}  # first reward of each model
        self._pending: dict[tuple[int, ...], int] = {}  # times sampled while outstanding
        self._memory: list[tuple[tuple[int, ...], float]] = []
        self._trajectories: dict[tuple[int, ...], _Trajectory] = {}
        self._updates = 0

    def _propose(self) -> tuple[list[int], dict[str, Any] | None]:
        eps = self.epsilon
        size = self._space_size  # known models are a subset of those seen
        exhausted = (
            size is not None
            and len(self._seen) >= size
            and len(self._rewards.keys() | self._pending.keys()) >= size
        )
        for _ in range(0 if exhausted else self.max_resamples):
            key = self._sample(eps)
            if key in self._rewards:
                self._learn(key, self._rewards[key], 1)
            elif key in self._pending:
                self._pending[key] += 1
            else:
                return self._hand_out(key), {"epsilon": eps}
        # The guard: a uniformly random model, one not yet known when such is found.
        key = tuple(self.codec.random_tokens(self.rng))
        for _ in range(0 if exhausted else self.max_resamples - 1):
            if key not in self._rewards and key not in self._pending:
                break
            key = tuple(self.codec.random_tokens(self.rng))
        return self._hand_out(key), {"epsilon": eps, "fallback": True}

    def _feedback(self, proposal: Proposal, reward: float) -> None:
        key = tuple(proposal.tokens)
        times = self._pending.pop(key, 1)
        self._rewards.setdefault(key, reward)
        self._learn(key, reward, times)

    def _failed(self, proposal: Proposal) -> None:
        self._pending.pop(tuple(proposal.tokens), None)

    # ------------------------------------------------------------------ internals

    def _hand_out(self, key: tuple[int, ...]) -> list[int]:
        self._seen[key] = None
        self._pending[key] = self._pending.get(key, 0) + 1
        return list(key)

    def _sample(self, eps: float) -> tuple[int, ...]:
        """One ε-greedy walk; its trajectory is cached for the updates."""
        rng, q_table, base = self.rng, self._q, self._base
        walker = self.codec.walker()
        state = 0
        steps: _Trajectory = []
        while not walker.done:
            valid = walker.valid_tokens()
            q = q_table[state]
            if rng.random() < eps:
                token = valid[rng.randrange(len(valid))]
            else:
                best = max([q[t] for t in valid])
                ties = [t for t in valid if q[t] == best]
                token = ties[rng.randrange(len(ties))] if len(ties) > 1 else ties[0]
            steps.append((q, token, None if len(valid) == len(q) else tuple(valid)))
            state = base[walker.decision] + token
            walker.push(token)
        key = tuple(walker.tokens)
        if key not in self._trajectories:
            steps.reverse()
            self._trajectories[key] = steps
        return key

    def _trajectory(self, key: tuple[int, ...]) -> _Trajectory:
        """The steps of a model, last first: (Q-row, token, valid tokens or None for all)."""
        steps = self._trajectories.get(key)
        if steps is None:
            walker = self.codec.walker()
            state, steps = 0, []
            for token in key:
                valid = walker.valid_tokens()
                q = self._q[state]
                steps.append((q, token, None if len(valid) == len(q) else tuple(valid)))
                state = self._base[walker.decision] + token
                walker.push(token)
            steps.reverse()
            self._trajectories[key] = steps
        return steps

    def _learn(self, key: tuple[int, ...], reward: float, times: int) -> None:
        """A finished model joins the memory ``times`` times, each followed by replays."""
        memory, random = self._memory, self.rng.random
        for _ in range(times):
            memory.append((key, reward))
            for _ in range(self.replays_per_model):
                self._update(*memory[int(random() * len(memory))])
            self._updates += 1

    def _update(self, key: tuple[int, ...], reward: float) -> None:
        """Q-learning updates along one model, backwards from the terminal reward."""
        lr, gamma = self.learning_rate, self.discount
        target = reward
        for q, a, valid in self._trajectory(key):
            q[a] += lr * (target - q[a])
            target = gamma * (max(q) if valid is None else max([q[t] for t in valid]))

    # ------------------------------------------------------------------ state

    def _state_dict(self) -> dict[str, Any]:
        index = {key: i for i, key in enumerate(self._seen)}
        return {
            "schedule": [[eps, n] for eps, n in self._schedule],
            "q": [list(row) for row in self._q],
            "seen": [list(key) for key in self._seen],
            "rewards": [[index[key], r] for key, r in self._rewards.items()],
            "pending": [[index[key], n] for key, n in self._pending.items()],
            "memory": [[index[key], r] for key, r in self._memory],
            "updates": self._updates,
        }

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        q = [[float(x) for x in row] for row in state["q"]]
        if [len(row) for row in q] != self._vocab_after:
            raise ValueError("`state` must come from the same space: its Q-table has another shape")
        seen = [tuple(int(t) for t in tokens) for tokens in state["seen"]]
        for key in seen:
            self.codec.validate(key)
        self._schedule = [(float(eps), int(n)) for eps, n in state["schedule"]]
        self._q = q
        self._seen = dict.fromkeys(seen)
        self._rewards = {seen[i]: float(r) for i, r in state["rewards"]}
        self._pending = {seen[i]: int(n) for i, n in state["pending"]}
        self._memory = [(seen[i], float(r)) for i, r in state["memory"]]
        self._trajectories = {}
        self._updates = int(state["updates"])

    def __repr__(self) -> str:
        if self.preset is not None:
            return f"{type(self).__name__}(preset={self.preset!r}, seed={self.seed})"
        return f"{type(self).__name__}(seed={self.seed})"
