"""What ``reinforce`` and ``ppo`` share: the controller, its queue, baseline and memory.

:class:`ControllerSearch` turns the :class:`~symbolic_nas.algorithms.controller.Controller`
into an :class:`~symbolic_nas.algorithms.base.Algorithm`; subclasses supply only the
loss of one update (:meth:`ControllerSearch._step`).

Flow. Proposals come from a queue that the controller fills ``sample_batch``
architectures at a time (one torch call per step for all of them). Rewards are
collected in a buffer; once it holds ``batch_size`` rewards from feedback (the
paper's *m*), one update runs on everything buffered and the policy version goes
up by one. Queued architectures that were not handed out before an update are
discarded, so that every proposal comes from the policy current when it is
handed out (so ``sample_batch`` larger than ``batch_size`` only helps when many
proposals are outstanding at once).

Asynchronous feedback. Each proposal records the version that produced it and
its log-probability under that policy (``proposal.meta["log_prob"]``). Feedback
may come in any order and after later updates. A sample that is ``s`` versions
old is *stale*: with ``s > max_staleness`` it is dropped from the gradient (it
still counts for the baseline and the reward memory); otherwise the subclass
corrects for it (``reinforce``: a truncated importance weight; ``ppo``: its
clipped ratio).

Advantages. The baseline is an exponential moving average of the rewards before
the current batch, bias-corrected as in Adam (``b_k = EMA_k / (1 - decay^k)``),
so that it is an average of past rewards from the first one on; the first batch,
which has no past, uses its own mean. With ``normalize_advantage`` the advantage
``R - b`` is divided by a running root-mean-square of past advantages (same
decay and bias correction), which makes the learning dynamics independent of the
reward's scale (percent or fraction) and keeps ``entropy_weight`` meaningful on
any scale.

Reward memory (``reward_memory=True``). An architecture that was already
proposed and rewarded is not handed out again: its remembered reward (the mean
of its rewards) joins the buffer as one more sample for the next update (up to
``batch_size`` such samples per update; they do not count towards it), and the
controller samples again (MetaQNN, Baker et al. 2017, likewise never trains a
sampled model twice). After a hit the controller samples 64 architectures per
call, and so does the first call of a policy version whose predecessor had hits
(one call of 64 costs less than several of ``sample_batch``); after 64 hits in a
row the duplicate is handed out, and once the memory holds the whole (finite)
space the rule is off. On NAS-Bench-201 it about doubles both the distinct cells a
300-query search proposes and the runs that find the optimum (``benchmarks/RESULTS.md``).
The samples, the memory and the baseline's moments are the small classes of
:mod:`~symbolic_nas.algorithms.controller.memory`.
A rewarded architecture's reward is taken as known: with noisy evaluations,
``reward_memory=False`` lets the search evaluate it again.

Predictor screening (``predictor=True``, the default; off in the
``zoph_le_2017`` preset). Once ``predictor_warmup`` architectures have rewards,
each proposal is chosen among ``predictor_candidates`` fresh samples of the
current policy (those not yet rewarded nor outstanding) by a performance
predictor fitted to the rewards so far (refitted every ``predictor_refit`` new
rewards) (:mod:`~symbolic_nas.algorithms._predictor`:
an ensemble of small MLPs on the codec's one-hot encoding, as ``bananas``
uses), by independent Thompson sampling over the ensemble (or its mean). The
chosen sample keeps its log-probability and the controller learns from its real
reward as from any sample, so the policy still moves towards what is good and
the predictor only spends the evaluations where they promise most; with
``predicted_rewards=k`` the ``k`` best-predicted samples that were screened out
also join the next update with their predicted reward (at most ``batch_size``
such samples per update, as memory hits). This follows the idea of a predictor
guiding an RL agent (as one summary describes Cassimon, Mercelis and Mets,
"Scalable Reinforcement Learning-based Neural Architecture Search", 2024); the
screening and its settings are this library's, chosen on NAS-Bench-201
(``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import abc
import collections
import contextlib
import copy
import dataclasses
import math
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import torch

from symbolic_nas.algorithms._predictor import Screen
from symbolic_nas.algorithms.base import Algorithm, Proposal
from symbolic_nas.algorithms.controller.config import ControllerConfig
from symbolic_nas.algorithms.controller.memory import Moments, RewardMemory, Sample
from symbolic_nas.algorithms.controller.policy import Controller, Scores
from symbolic_nas.validation import InstanceOf, Interval, InvalidParameterError, validate_params

__all__ = ["ControllerSearch", "one_torch_thread"]

_MAX_MEMORY_DRAWS = 64
_MEMORY_BATCH = 64
_RELATIVE_NOISE = 1e-6


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Runs the block with one torch intra-op thread, then restores the count.

    The controller's tensors are tiny: its cost is per-op dispatch, which extra
    threads only add synchronisation to; switching the count is cheap (figures in
    ``benchmarks/RESULTS-tuner.md``).

    Example:
        >>> import torch
        >>> from symbolic_nas.algorithms.controller import one_torch_thread
        >>> before = torch.get_num_threads()
        >>> with one_torch_thread():
        ...     torch.get_num_threads()
        1
        >>> torch.get_num_threads() == before
        True
    """
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _parameter_constraints_of(config_class: type[ControllerConfig]) -> dict[str, list[Any]]:
    """Constructor parameter -> constraints: ``seed``, ``preset``, ``config`` and the
    config's fields (each also None: the constructor reads None as "not given")."""
    fields = {
        name: declared if None in declared else [*declared, None]
        for name, declared in config_class.constraints().items()
    }
    return {
        "seed": [Interval(int, None, None), None],
        "preset": config_class.preset_constraints(),
        "config": [None, InstanceOf(config_class)],
        **fields,
    }


class ControllerSearch(Algorithm):
    """Base of the controller algorithms (``reinforce``, ``ppo``); see the module docs.

    Hyperparameters live in a config (:attr:`config_class`, a
    :class:`~symbolic_nas.algorithms.controller.config.ControllerConfig`):
    ``Subclass(seed=0, batch_size=4)`` makes one from the defaults,
    ``preset="..."`` starts from a preset's settings, ``config=...`` from a config
    of its own; keyword hyperparameters override either, and a hyperparameter
    given as None keeps the preset's or default value. The config's fields read
    as attributes too (``algo.batch_size`` is ``algo.config.batch_size``).
    Subclasses set :attr:`config_class` and implement :meth:`_step`; their
    ``_parameter_constraints`` are derived from the config's declarations.
    """

    #: The dataclass of this algorithm's hyperparameters.
    config_class: ClassVar[type[ControllerConfig]] = ControllerConfig
    #: ``(base, reference)`` of ``learning_rate="auto"``: the rate is ``base`` up to a
    #: budget of ``reference`` trials and falls as ``1 / budget`` beyond it.
    AUTO_LEARNING_RATE: ClassVar[tuple[float, int]] = (0.01, 300)
    #: Constructor parameter -> its constraints (any one must hold), derived from
    #: :attr:`config_class` (set for every subclass by ``__init_subclass__``).
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = _parameter_constraints_of(
        ControllerConfig
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._parameter_constraints = _parameter_constraints_of(cls.config_class)

    def __init__(
        self,
        *,
        seed: int | None = 0,
        preset: str | None = None,
        config: ControllerConfig | None = None,
        **hyperparameters: Any,
    ):
        own = self._parameter_constraints
        validate_params(
            {k: own[k] for k in ("seed", "preset", "config")},
            {"seed": seed, "preset": preset, "config": config},
        )
        if config is None:
            config = self.config_class.from_preset(preset)
        elif preset is not None:
            raise InvalidParameterError(
                f"`preset` must be None when `config` is given, but got {preset!r}"
            )
        config = config.override(**{k: v for k, v in hyperparameters.items() if v is not None})
        super().__init__(seed=seed)
        self.preset = preset
        #: The hyperparameters (frozen; validated).
        self.config = config
        self._transform = config.reward_function
        self._controller: Controller | None = None

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: the config's fields read as attributes.
        config = self.__dict__.get("config")
        if config is not None and name in config.settings():
            return getattr(config, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # ------------------------------------------------------------------ hooks

    def _setup(self) -> None:
        init_seed = self.rng.getrandbits(62)
        sample_seed = self.rng.getrandbits(62)
        screen_seed = self.rng.getrandbits(62)
        self._screen = (
            Screen(self.codec, refit_every=self.config.predictor_refit, seed=screen_seed)
            if self.config.predictor
            else None
        )
        self._controller = Controller(
            self.codec,
            hidden_size=self.config.hidden_size,
            num_layers=self.config.num_layers,
            temperature=self.config.temperature,
            tanh_constant=self.config.tanh_constant,
            init_range=self.config.init_range,
            seed=init_seed,
        )
        self._optimizer = torch.optim.Adam(
            self._controller.parameters(), lr=self.effective_learning_rate, foreach=True
        )
        self._generator = torch.Generator().manual_seed(sample_seed)
        self._version = 0
        self._moments = Moments(self.config.baseline_decay)
        self._queue: collections.deque[Sample] = collections.deque()
        self._buffer: list[Sample] = []
        self._buffered_real = 0
        self._memory = RewardMemory(self.codec.space_size)
        self._memory_hits = 0
        # Memory hits of the current policy version, and of the one before.
        self._hits_now = 0
        self._hits_before = 0
        self._dropped = 0
        self._last: dict[str, float] = {}
        self._scored: Scores | None = None  # the last update's scores

    @property
    def effective_learning_rate(self) -> float:
        """The learning rate in use: ``learning_rate``, or for ``"auto"``
        ``base * min(1, reference / budget)`` with ``(base, reference)`` =
        :attr:`AUTO_LEARNING_RATE` (``base`` when the budget is unknown)."""
        if self.config.learning_rate != "auto":
            return float(self.config.learning_rate)
        base, reference = self.AUTO_LEARNING_RATE
        if self.budget is None:
            return base
        return base * min(1.0, reference / self.budget)

    @property
    def controller(self) -> Controller:
        """The policy network (after :meth:`setup`)."""
        if self._controller is None:
            raise RuntimeError(f"{type(self).__name__}.setup(codec) must be called first")
        return self._controller

    @property
    def version(self) -> int:
        """Number of updates so far."""
        return self._version if self._controller is not None else 0

    def _propose(self) -> tuple[list[int], dict[str, Any] | None]:
        with one_torch_thread():
            return self._draw()

    def _draw(self) -> tuple[list[int], dict[str, Any] | None]:
        if self._screen is not None and len(self._memory) >= self.config.predictor_warmup:
            screened = self._screened()
            if screened is not None:
                return screened
        draws = 0
        while True:
            if not self._queue:
                # After a memory hit, new architectures may be rare: draw more per call,
                # from the first call of a policy version on when the previous one hit.
                hit = draws > 0 or self._hits_before > 0
                batch = self.config.sample_batch
                n = max(batch, _MEMORY_BATCH) if hit else batch
                for tokens, log_prob in self.controller.sample(n, self._generator):
                    self._queue.append(Sample(tokens, log_prob, self._version))
            sample = self._queue.popleft()
            remembered = self._memory.recall(sample.tokens) if self.config.reward_memory else None
            if remembered is None or draws >= _MAX_MEMORY_DRAWS:
                return sample.tokens, {"log_prob": sample.log_prob}
            draws += 1
            self._memory_hits += 1
            self._hits_now += 1
            if len(self._buffer) - self._buffered_real < self.config.batch_size:
                self._learn(sample, remembered, real=False)

    def _screened(self) -> tuple[list[int], dict[str, Any]] | None:
        """The most promising of ``predictor_candidates`` fresh samples (None: no
        sample was fresh)."""
        assert self._screen is not None
        config = self.config
        pending = {tuple(p.tokens) for p in self._outstanding.values()}
        fresh: dict[tuple[int, ...], tuple[list[int], float]] = {}
        for tokens, log_prob in self.controller.sample(
            config.predictor_candidates, self._generator
        ):
            key = tuple(tokens)
            if key not in fresh and key not in pending and self._memory.recall(tokens) is None:
                fresh[key] = (tokens, log_prob)
        if not fresh:
            return None
        candidates = list(fresh.values())
        best, mean = self._screen.pick(
            self._memory.means(),
            [t for t, _ in candidates],
            config.predictor_acquisition,
            self.rng,
        )
        if config.predicted_rewards:
            others = sorted(
                (i for i in range(len(candidates)) if i != best), key=lambda i: -mean[i]
            )
            for i in others[: config.predicted_rewards]:
                if len(self._buffer) - self._buffered_real < config.batch_size:
                    tokens, log_prob = candidates[i]
                    self._learn(Sample(tokens, log_prob, self._version), float(mean[i]), real=False)
        tokens, log_prob = candidates[best]
        return tokens, {"log_prob": log_prob, "predicted": float(mean[best])}

    def _feedback(self, proposal: Proposal, reward: float) -> None:
        with one_torch_thread():
            self._answer(proposal, reward)

    def _answer(self, proposal: Proposal, reward: float) -> None:
        self._memory.add(proposal.tokens, reward)
        log_prob = proposal.meta.get("log_prob")
        if log_prob is None:
            log_prob = float(self.controller.score([proposal.tokens]).log_prob[0])
        self._learn(Sample(proposal.tokens, float(log_prob), proposal.version), reward, real=True)

    def _learn(self, sample: Sample, reward: float, *, real: bool) -> None:
        """Buffers ``sample`` with its (transformed) reward; ``batch_size`` real rewards
        trigger an update."""
        value = float(self._transform(reward))
        if not math.isfinite(value):
            raise ValueError(
                f"`reward_transform` must map rewards to finite numbers, but it mapped "
                f"{reward!r} to {value!r}"
            )
        self._buffer.append(dataclasses.replace(sample, tokens=list(sample.tokens), reward=value))
        self._buffered_real += real
        if self._buffered_real >= self.config.batch_size:
            self._update()

    # ------------------------------------------------------------------ update

    def _advantages(self, rewards: list[float]) -> list[float]:
        """Advantages of a batch against the past (then folds the batch into the past)."""
        moments = self._moments
        baseline = moments.baseline
        if baseline is None:
            baseline = sum(rewards) / len(rewards)
        advantages = [r - baseline for r in rewards]
        if self.config.normalize_advantage:
            rms = moments.rms
            if rms is None:
                rms = math.sqrt(sum(a * a for a in advantages) / len(advantages))
            # Differences below a millionth of the reward's magnitude are rounding
            # noise, not signal: they must not be blown up to unit size.
            scale = max(rms, _RELATIVE_NOISE * abs(baseline))
            advantages = [a / scale if scale > 0 else 0.0 for a in advantages]
        for r in rewards:
            moments.add(r)
        return advantages

    def _update(self) -> None:
        batch, self._buffer = self._buffer, []
        self._buffered_real = 0
        rewards = [s.reward for s in batch if s.reward is not None]
        assert len(rewards) == len(batch)  # buffered samples carry their reward
        advantages = self._advantages(rewards)
        kept = [
            (s, a)
            for s, a in zip(batch, advantages)
            if self._version - s.version <= self.config.max_staleness
        ]
        self._dropped += len(batch) - len(kept)
        if not kept:
            return
        samples = [s for s, _ in kept]
        self._last = self._step(samples, torch.tensor([a for _, a in kept]))
        assert self._scored is not None  # the step scored the batch
        self._last.update(self._decision_stats(self._scored))
        self._version += 1
        self._queue.clear()
        self._hits_before, self._hits_now = self._hits_now, 0

    def _loss_terms(self, scores: Scores) -> torch.Tensor:
        """``- entropy_weight * mean entropy + skip_weight * mean skip KL``."""
        loss = -self.config.entropy_weight * scores.entropy.mean()
        if self.config.skip_weight > 0:
            loss = loss + self.config.skip_weight * scores.skip_kl.mean()
        return loss

    def _score(self, samples: list[Sample]) -> Scores:
        target = self.config.skip_target if self.config.skip_weight > 0 else None
        scores = self.controller.score([s.tokens for s in samples], skip_target=target)
        self._scored = scores
        return scores

    def _decision_stats(self, scores: Scores) -> dict[str, float]:
        """``decision_p_max/<decision>``: the mean highest token probability at each
        decision the batch visited (1 / vocabulary: undecided; 1: settled)."""
        probs = scores.step_max_prob.numpy()
        decisions = scores.step_decisions
        names = self.codec.decisions
        return {
            f"decision_p_max/{names[d].name}": float(probs[decisions == d].mean())
            for d in np.unique(decisions[decisions >= 0])
        }

    def _optimize(self, loss: torch.Tensor) -> None:
        self._optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self._optimizer.step()

    @abc.abstractmethod
    def _step(self, samples: list[Sample], advantages: torch.Tensor) -> dict[str, float]:
        """Updates the controller on a batch; returns scalar statistics of the update.

        Args:
            samples: The batch, each with its (transformed) ``reward``, its
                ``version`` (of the policy that produced it) and ``log_prob`` (its
                log-probability under that policy).
            advantages: One advantage per sample (float32 tensor).
        """

    # ------------------------------------------------------------------ state

    def stats(self) -> dict[str, float]:
        """Version, baseline, advantage scale, memory hits and the last update's figures."""
        if self._controller is None:
            return {}
        out = {
            "version": float(self._version),
            "learning_rate": self.effective_learning_rate,
            "buffered": float(len(self._buffer)),
            "memory_hits": float(self._memory_hits),
            "dropped_stale": float(self._dropped),
        }
        if self._screen is not None:
            out["predictor_fits"] = float(self._screen.fits)
        if self._moments.baseline is not None:
            out["baseline"] = self._moments.baseline
        if self._moments.rms is not None:
            out["advantage_rms"] = self._moments.rms
        out.update(self._last)
        return out

    def _state_dict(self) -> dict[str, Any]:
        return {
            # Copies, so that a kept state does not follow later in-place updates.
            "controller": {k: v.detach().clone() for k, v in self.controller.state_dict().items()},
            "optimizer": copy.deepcopy(self._optimizer.state_dict()),
            "generator": self._generator.get_state(),
            "version": self._version,
            "moments": self._moments.state(),
            "queue": [s.to_dict() for s in self._queue],
            "buffer": [s.to_dict() for s in self._buffer],
            "buffered_real": self._buffered_real,
            "memory": self._memory.state(),
            "memory_hits": self._memory_hits,
            "version_hits": [self._hits_now, self._hits_before],
            "dropped": self._dropped,
            "last": dict(self._last),
            "screen": None if self._screen is None else [self._screen.fits, self._screen.fitted_on],
        }

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        self.controller.load_state_dict(state["controller"])
        self._optimizer.load_state_dict(state["optimizer"])
        self._generator.set_state(state["generator"])
        self._version = int(state["version"])
        self._moments.load(state["moments"])
        self._queue = collections.deque(Sample.from_dict(s) for s in state["queue"])
        self._buffer = [Sample.from_dict(s) for s in state["buffer"]]
        self._buffered_real = int(state["buffered_real"])
        self._memory.load(state["memory"])
        self._memory_hits = int(state["memory_hits"])
        self._hits_now, self._hits_before = (int(n) for n in state["version_hits"])
        self._dropped = int(state["dropped"])
        self._last = {k: float(v) for k, v in state["last"].items()}
        if self._screen is not None:
            # The predictor is refitted from the memory when next needed (same seed, same fit).
            self._screen.forget()
            if state.get("screen") is not None:
                self._screen.fits, self._screen.fitted_on = (int(n) for n in state["screen"])

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(seed={self.seed}, learning_rate={self.config.learning_rate}, "
            f"batch_size={self.config.batch_size})"
        )
