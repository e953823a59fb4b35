"""The search-algorithm interface: propose token sequences, learn from rewards.

An algorithm never sees a model, an exception, a worker or a file: it proposes
token sequences for a :class:`~symbolic_nas.space.codec.Codec` and receives rewards.
Subclasses implement three hooks (``_setup``, ``_propose``, ``_feedback``) and,
when they hold state, ``_state_dict``/``_load_state_dict``; the base class owns
proposal ids, outstanding proposals, the failure policy and the registry.

Failure policy (documented contract, checked by ``symbolic_nas.testing``):
``feedback(p, None)`` or a NaN/infinite reward closes the proposal *without a
learning signal* (the tuner's failed trials arrive this way unless it is
configured to send a finite penalty); a proposal that is never answered stays
outstanding, is kept by ``state_dict`` and never blocks further proposals.
"""

from __future__ import annotations

import abc
import dataclasses
import difflib
import math
import numbers
import random
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import pyglove as pg

from symbolic_nas.registry import Registry
from symbolic_nas.space.codec import Codec, to_space
from symbolic_nas.space.dna import LazyDNA
from symbolic_nas.space.floats import check_floats, floats_from_json, floats_to_json, snap_floats
from symbolic_nas.validation import (
    Interval,
    InvalidParameterError,
    Satisfies,
    check,
    keyword_parameters,
    validate_params,
)

__all__ = ["Algorithm", "Proposal", "Proposed", "available", "get", "register"]


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclasses.dataclass(eq=False)
class Proposal(LazyDNA):
    """Tokens handed out by an algorithm and awaiting feedback.

    Attributes:
        id: Unique id within the algorithm's run (0, 1, 2, ...).
        tokens: The token sequence.
        version: The policy version (number of updates) that produced it.
        meta: JSON-able algorithm data (e.g. the log-probability at sampling time).
        codec: The codec of the tokens, which :attr:`dna` needs.
        floats: The exact (unbinned) value of float decisions, by decision index,
            from algorithms that propose continuous values (``random``,
            ``evolution``, ``optuna``); each one's token is the bin nearest it (see
            :mod:`symbolic_nas.space.floats`). Empty: the bins' values.
    """

    id: int
    tokens: list[int]
    version: int = 0
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)
    codec: Codec | None = dataclasses.field(default=None, repr=False)
    floats: dict[int, float] = dataclasses.field(default_factory=dict)

    @property
    def budget(self) -> float | None:
        """The resource (e.g. epochs) the algorithm's schedule gives this proposal's
        trial (``meta["budget"]``, from multi-fidelity algorithms such as
        ``successive_halving``), or None: the evaluator's own choice."""
        value = self.meta.get("budget")
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (without the codec; ``floats`` only when there are some)."""
        out = {
            "id": self.id,
            "tokens": list(self.tokens),
            "version": self.version,
            "meta": dict(self.meta),
        }
        if self.floats:
            out["floats"] = floats_to_json(self.floats)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], codec: Codec | None = None) -> Proposal:
        return cls(
            id=int(data["id"]),
            tokens=[int(t) for t in data["tokens"]],
            version=int(data.get("version", 0)),
            meta=dict(data.get("meta", {})),
            codec=codec,
            floats=floats_from_json(data.get("floats")),
        )


#: What :meth:`Algorithm._propose` returns: ``(tokens, meta)`` or ``(tokens, meta, floats)``.
Proposed = (
    tuple[list[int], dict[str, Any] | None]
    | tuple[list[int], dict[str, Any] | None, dict[int, float]]
)

_BUDGET = [Interval(int, 1, None), None]
# NaN and infinities are rewards too: they mean "failed".
_REWARD = [Satisfies(_is_real, "a float", invalid=["1", True]), None]
_OBJECTIVES = [
    Satisfies(
        lambda v: (
            isinstance(v, (list, tuple))
            and len(v) > 0
            and all(_is_real(x) and math.isfinite(x) for x in v)
        ),
        "a non-empty list of finite floats",
        invalid=[[], [math.nan]],
    )
]


class Algorithm(abc.ABC):
    """Base class of search algorithms (one per file, registered by name).

    Subclasses take keyword-only hyperparameters, declare their constraints in
    ``_parameter_constraints`` (``{**Algorithm._parameter_constraints, ...}``),
    validate them in ``__init__`` with
    :func:`~symbolic_nas.validation.validate_params` and call
    ``super().__init__(seed=seed)``. They own their randomness through
    ``self.rng`` (a ``random.Random``) and anything else they seed from it.

    Example:
        >>> import symbolic_nas as sn
        >>> from symbolic_nas import algorithms
        >>> codec = sn.encode({"k": sn.oneof([3, 5, 7])})
        >>> algo = algorithms.get("random", seed=0)
        >>> algo.setup(codec, budget=3)
        >>> p = algo.propose()
        >>> algo.feedback(p, 0.5)
        >>> algo.num_feedback
        1
    """

    name: ClassVar[str] = ""
    #: Whether feedback changes future proposals (random search: False).
    learns: ClassVar[bool] = True
    #: Whether proposals carry a training budget (:attr:`Proposal.budget`) that the
    #: tuner hands to the trial (multi-fidelity schedules: ``successive_halving``).
    schedules_budget: ClassVar[bool] = False
    #: Whether the algorithm learns from the objective vector of ``feedback(...,
    #: objectives=...)`` (NSGA-II) rather than from the scalar reward alone.
    multi_objective: ClassVar[bool] = False
    #: Each keyword hyperparameter's constraints (:mod:`symbolic_nas.validation`);
    #: a subclass's dict merges this one.
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "seed": [Interval(int, None, None), None],
    }

    def __init__(self, *, seed: int | None = 0):
        validate_params(self._parameter_constraints, {"seed": seed})
        self.seed = seed
        self.rng = random.Random(seed)
        self._codec: Codec | None = None
        self.budget: int | None = None
        self._next_id = 0
        self._outstanding: dict[int, Proposal] = {}
        self.num_feedback = 0
        self.num_failed = 0

    # ------------------------------------------------------------------ public API

    @property
    def codec(self) -> Codec:
        if self._codec is None:
            raise RuntimeError(f"{type(self).__name__}.setup(codec) must be called first")
        return self._codec

    @property
    def num_proposed(self) -> int:
        return self._next_id

    @property
    def outstanding(self) -> list[Proposal]:
        """Proposals handed out and not yet answered, oldest first."""
        return list(self._outstanding.values())

    def outstanding_proposal(self, proposal_id: int) -> Proposal | None:
        """The outstanding proposal with this id, or None (never proposed, or answered).

        Example:
            >>> import symbolic_nas as sn
            >>> from symbolic_nas import algorithms
            >>> algo = algorithms.get("random", seed=0)
            >>> algo.setup(sn.encode({"k": sn.oneof([3, 5])}))
            >>> p = algo.propose()
            >>> algo.outstanding_proposal(p.id) is p
            True
            >>> algo.feedback(p, 1.0)
            >>> algo.outstanding_proposal(p.id) is None
            True
        """
        return self._outstanding.get(proposal_id)

    def setup(self, codec: Codec, budget: int | None = None) -> None:
        """Prepares the algorithm for a space; ``budget`` is the planned number of trials."""
        if not isinstance(codec, Codec):
            raise TypeError(
                f"`codec` must be a symbolic_nas Codec (sn.encode(space)), but got {codec!r}"
            )
        check("budget", budget, _BUDGET)
        self._codec = codec
        self.budget = budget
        self.rng = random.Random(self.seed)
        self._next_id = 0
        self._outstanding = {}
        self.num_feedback = 0
        self.num_failed = 0
        self._setup()

    def propose(self) -> Proposal:
        """The next proposal (its feedback may come later, in any order)."""
        codec = self.codec
        tokens, meta, *rest = self._propose()
        floats: dict[int, float] = {}
        if rest and rest[0]:  # exact float values: their tokens become their nearest bins
            tokens, floats = snap_floats(codec, tokens, rest[0])
        proposal = Proposal(
            id=self._next_id,
            tokens=list(tokens),
            version=self.version,
            meta=meta or {},
            codec=codec,
            floats=floats,
        )
        self._next_id += 1
        self._outstanding[proposal.id] = proposal
        return proposal

    def feedback(
        self,
        proposal: Proposal,
        reward: float | None,
        *,
        objectives: Sequence[float] | None = None,
    ) -> None:
        """Reports the reward of a proposal; None or a non-finite reward means failed.

        ``objectives`` is the trial's objective vector (every entry maximised: the
        tuner negates minimised metrics) when the search has several objectives; a
        multi-objective algorithm (:attr:`multi_objective`) learns from it, the others
        from ``reward`` alone. It is ignored for a failed proposal.
        """
        if not isinstance(proposal, Proposal):
            raise TypeError(f"`proposal` must be a Proposal, but got {proposal!r}")
        check("reward", reward, _REWARD)
        own = self.outstanding_proposal(proposal.id)
        if own is None:
            raise ValueError(
                f"`proposal` must be outstanding, but proposal {proposal.id} was never proposed "
                "by this algorithm or already got its feedback"
            )
        if own is not proposal and list(own.tokens) != list(proposal.tokens):
            raise ValueError(
                f"`proposal` must be one this algorithm proposed, but proposal {proposal.id} has "
                f"tokens {list(proposal.tokens)} instead of {own.tokens}"
            )
        del self._outstanding[proposal.id]
        self.num_feedback += 1
        if reward is None or not math.isfinite(reward):
            self.num_failed += 1
            self._failed(own)
            return
        if objectives is not None:
            check("objectives", objectives, _OBJECTIVES)
            self._feedback_objectives(own, float(reward), [float(v) for v in objectives])
        else:
            self._feedback(own, float(reward))

    @property
    def version(self) -> int:
        """The policy version; learning algorithms bump it at each update."""
        return 0

    def stats(self) -> dict[str, float]:
        """Scalar statistics for logging (entropy, baseline, epsilon, ...)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (JSON-able, tensors allowed)."""
        return {
            "name": self.name,
            "seed": self.seed,
            "budget": self.budget,
            "rng": _rng_state(self.rng),
            "next_id": self._next_id,
            "outstanding": [p.to_dict() for p in self._outstanding.values()],
            "num_feedback": self.num_feedback,
            "num_failed": self.num_failed,
            "algorithm": self._state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores a :meth:`state_dict` (call :meth:`setup` with the same codec first)."""
        codec = self.codec
        if state.get("name") != self.name:
            raise ValueError(
                f"`state` must come from a {self.name!r} algorithm, but got one from "
                f"{state.get('name')!r}"
            )
        self.budget = state["budget"]
        self.rng.setstate(_rng_from_state(state["rng"]))
        self._next_id = int(state["next_id"])
        outstanding = [Proposal.from_dict(p, codec) for p in state["outstanding"]]
        for p in outstanding:
            codec.validate(p.tokens)  # a state saved on another space fails here
            p.floats = check_floats(codec, codec.trace(p.tokens), p.tokens, p.floats)
        self._outstanding = {p.id: p for p in outstanding}
        self.num_feedback = int(state["num_feedback"])
        self.num_failed = int(state["num_failed"])
        self._load_state_dict(state["algorithm"])

    # ------------------------------------------------------------------ hooks

    def _setup(self) -> None:
        """Called by :meth:`setup` once ``codec``/``budget``/``rng`` are (re)set."""

    @abc.abstractmethod
    def _propose(self) -> Proposed:
        """Returns the tokens of the next proposal and its JSON-able metadata, as
        ``(tokens, meta)``, or ``(tokens, meta, floats)`` with the exact values of
        float decisions by decision index (their tokens are then set to the bins
        nearest the values; see :attr:`Proposal.floats`)."""

    def _feedback(self, proposal: Proposal, reward: float) -> None:
        """Learns from a finite reward."""

    def _feedback_objectives(
        self, proposal: Proposal, reward: float, objectives: list[float]
    ) -> None:
        """Learns from a finite reward and the objective vector (default: the reward alone)."""
        del objectives
        self._feedback(proposal, reward)

    def _failed(self, proposal: Proposal) -> None:
        """A proposal failed (no reward). Default: no learning signal."""

    def _state_dict(self) -> dict[str, Any]:
        return {}

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        del state

    # ------------------------------------------------------------------ pyglove

    def as_dna_generator(self, *, space: Any = None) -> pg.DNAGenerator:
        """This algorithm as a ``pg.DNAGenerator``, so ``pg.sample(space, ...)`` works.

        ``pg.sample`` yields PyGlove's symbolic records; the generator's
        ``sample(num_examples=...)`` yields the materialised objects (fresh
        modules) instead, and ``materialize(feedback.dna)`` turns a ``pg.sample``
        example into its object (see
        :class:`~symbolic_nas.algorithms.pyglove_adapter.DNAGeneratorAdapter`).

        Args:
            space: The space ``pg.sample`` will be called with. A plain
                ``dict``/``list``/``tuple`` becomes a PyGlove value (``pg.Dict``,
                ``pg.List``), kept as the generator's ``space``: pass that to
                ``pg.sample``, which cannot decode plain containers. When omitted,
                the algorithm works on the DNASpec alone (subset members are then
                plain binary decisions, and nothing can be materialised).
        """
        from symbolic_nas.algorithms.pyglove_adapter import DNAGeneratorAdapter

        return DNAGeneratorAdapter(self, space=None if space is None else to_space(space))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seed={self.seed})"


def _rng_state(rng: random.Random) -> list[Any]:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def _rng_from_state(state: list[Any]) -> tuple[Any, ...]:
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


# ---------------------------------------------------------------------- registry

_REGISTRY: Registry[type[Algorithm]] = Registry("algorithm")


def register(name: str) -> Callable[[type[Algorithm]], type[Algorithm]]:
    """Class decorator adding an algorithm to the registry under ``name`` (its ``name``)."""
    add = _REGISTRY.register(name)

    def decorate(cls: type[Algorithm]) -> type[Algorithm]:
        add(cls)
        cls.name = name
        return cls

    return decorate


def get(name: str | Algorithm, **kwargs: Any) -> Algorithm:
    """An algorithm by registered name (with keyword hyperparameters), or the instance given.

    Example:
        >>> from symbolic_nas import algorithms
        >>> algorithms.get("random", seed=1).seed
        1
    """
    if isinstance(name, Algorithm):
        if kwargs:
            raise ValueError(
                f"hyperparameters must not be given with an algorithm instance, "
                f"but got {sorted(kwargs)}"
            )
        return name
    factory = _REGISTRY.lookup(name)
    _check_hyperparameters(name, factory, kwargs)
    return factory(**kwargs)


def _check_hyperparameters(name: str, factory: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    """Unknown keyword hyperparameters fail with the valid names, before anything is built."""
    valid = keyword_parameters(factory)
    if valid is None:  # **kwargs (the controllers' configs list their own names), or no signature
        return
    for key in kwargs:
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InvalidParameterError(
                f"the hyperparameters of algorithm {name!r} must be among {valid}, "
                f"but got {key!r}{hint}"
            )


def available() -> list[str]:
    """Registered algorithm names, sorted."""
    return _REGISTRY.available()
