"""The contract every search algorithm must pass.

Each check builds fresh algorithms from a *factory*, a callable called as
``factory(seed=s)`` that returns a new :class:`~symbolic_nas.algorithms.Algorithm`
(or a registered name, e.g. ``"evolution"``), drives them on small spaces and
raises ``AssertionError`` with a message naming the algorithm, the space and
what broke. :func:`check_algorithm` runs them all:

* :func:`check_valid_proposals`: every proposal is valid in categorical,
  nested-conditional, float, ``manyof``/``permutate`` pick, anchor-form
  ``manyof`` and per-layer skip-connection (``subset``) spaces, with a few
  proposals outstanding at any time; proposals and ``stats()`` are JSON-able.
* :func:`check_reproducible`: the same seed gives the same proposals, and
  ``setup`` starts over.
* :func:`check_async_feedback`: many outstanding proposals answered in any order.
* :func:`check_failure_policy`: ``None``/NaN/±inf rewards close a proposal
  without a learning signal, never-answered proposals stay outstanding and
  never block, late answers are accepted.
* :func:`check_state_dict`: ``state_dict`` goes through
  ``torch.save`` and ``torch.load(weights_only=True)``, a clone loaded from it
  makes the same proposals, and a saved state is a snapshot (not changed by
  later work).
* :func:`check_beats_random` (for algorithms with ``learns = True``): on a
  seeded toy objective (:class:`ToyObjective`), the rewards of its final
  proposals beat random search's.

Example:
    >>> from symbolic_nas.testing import check_reproducible
    >>> check_reproducible("evolution")   # raises AssertionError when the check fails
"""

from __future__ import annotations

import copy
import io
import json
import math
import numbers
import random
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import symbolic_nas as sn
from symbolic_nas.algorithms.base import Algorithm, Proposal, get
from symbolic_nas.testing.algorithm_fixtures import ToyObjective, algorithm_test_spaces

__all__ = [
    "ToyObjective",
    "algorithm_test_spaces",
    "check_algorithm",
    "check_async_feedback",
    "check_beats_random",
    "check_failure_policy",
    "check_reproducible",
    "check_state_dict",
    "check_valid_proposals",
]

Factory = Callable[..., Algorithm]


# ---------------------------------------------------------------------- helpers


def _as_factory(factory: Factory | str) -> Factory:
    if isinstance(factory, str):
        name = factory
        return lambda seed: get(name, seed=seed)
    if not callable(factory):
        raise TypeError(
            "`factory` must be a registered algorithm name or a callable called as "
            f"factory(seed=s), but got {factory!r}"
        )
    return factory


def _make(factory: Factory, seed: int) -> Algorithm:
    algo = factory(seed=seed)
    if not isinstance(algo, Algorithm):
        raise AssertionError(
            f"factory(seed={seed}) must return a symbolic_nas Algorithm, but got {algo!r}"
        )
    return algo


def _name(algo: Algorithm) -> str:
    return algo.name or type(algo).__name__


def _reward(tokens: Sequence[int]) -> float:
    """A deterministic reward in [0, 1] that depends on every token."""
    return (sum((i + 1) * (t + 1) for i, t in enumerate(tokens)) % 11) / 10


def _propose(algo: Algorithm, codec: sn.Codec, where: str) -> Proposal:
    try:
        proposal = algo.propose()
    except Exception as e:
        raise AssertionError(
            f"{_name(algo)}: propose() raised {type(e).__name__}: {e} ({where})"
        ) from e
    if not isinstance(proposal, Proposal):
        raise AssertionError(f"{_name(algo)}: propose() must return a Proposal, got {proposal!r}")
    tokens = proposal.tokens
    if not isinstance(tokens, list) or not all(
        isinstance(t, int) and not isinstance(t, bool) for t in tokens
    ):
        raise AssertionError(
            f"{_name(algo)}: proposal {proposal.id} tokens must be a list of ints, "
            f"got {tokens!r} ({where})"
        )
    try:
        codec.validate(tokens)
    except ValueError as e:
        raise AssertionError(
            f"{_name(algo)}: proposal {proposal.id} is not valid ({where}): {tokens} -> {e}"
        ) from None
    return proposal


def _answer(algo: Algorithm, proposal: Proposal, reward: float | None, where: str = "") -> None:
    try:
        algo.feedback(proposal, reward)
    except Exception as e:
        raise AssertionError(
            f"{_name(algo)}: feedback(proposal {proposal.id}, {reward!r}) raised "
            f"{type(e).__name__}: {e} ({where})"
        ) from e


def _drive(
    algo: Algorithm,
    codec: sn.Codec,
    num: int,
    reward: Callable[[list[int]], float | None],
    *,
    lag: int = 0,
    order_seed: int = 0,
    where: str = "",
) -> list[Proposal]:
    """Proposes ``num`` times with up to ``lag`` proposals outstanding, answered in a
    seeded random order; returns the proposals in proposal order."""
    order = random.Random(order_seed)
    waiting: list[Proposal] = []
    made: list[Proposal] = []
    for i in range(num):
        proposal = _propose(algo, codec, f"{where}, proposal {i}")
        made.append(proposal)
        waiting.append(proposal)
        while len(waiting) > lag:
            answered = waiting.pop(order.randrange(len(waiting)))
            _answer(algo, answered, reward(answered.tokens), where)
    for answered in waiting:
        _answer(algo, answered, reward(answered.tokens), where)
    return made


def _tokens(proposals: Iterable[Proposal]) -> list[Any]:
    """The tokens of each proposal, followed by its exact float values when it has some."""
    return [[*p.tokens, p.floats] if p.floats else list(p.tokens) for p in proposals]


def _same(a: Any, b: Any) -> bool:
    """Deep equality of state dicts (tensors compared by value)."""
    import torch

    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and bool(torch.equal(a, b))
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


# ---------------------------------------------------------------------- checks


def check_valid_proposals(
    factory: Factory | str, *, num_proposals: int = 30, spaces: dict[str, Any] | None = None
) -> None:
    """Every proposal is valid on every contract space, with proposals outstanding.

    Args:
        factory: A callable ``factory(seed=s) -> Algorithm``, or a registered name.
        num_proposals: Proposals per space.
        spaces: Spaces to use instead of :func:`algorithm_test_spaces`.

    Raises:
        AssertionError: A proposal is invalid, not JSON-able, or ``stats()`` is
            not a dict of numbers.
    """
    factory = _as_factory(factory)
    for space_name, space in (spaces or algorithm_test_spaces()).items():
        codec = sn.encode(space)
        algo = _make(factory, 0)
        algo.setup(codec, budget=num_proposals)
        where = f"space {space_name!r}"
        made = _drive(algo, codec, num_proposals, _reward, lag=3, where=where)
        if [p.id for p in made] != list(range(num_proposals)):
            raise AssertionError(
                f"{_name(algo)}: proposal ids must be 0, 1, 2, ..., got {[p.id for p in made]}"
            )
        for p in made:
            try:
                json.dumps(p.to_dict())
            except (TypeError, ValueError) as e:
                raise AssertionError(
                    f"{_name(algo)}: proposal {p.id} must be JSON-able ({where}): {e}"
                ) from None
        if codec.to_tokens(made[0].dna) != made[0].tokens:
            raise AssertionError(f"{_name(algo)}: proposal.dna does not match its tokens ({where})")
        stats = algo.stats()
        if not isinstance(stats, dict) or not all(
            isinstance(k, str) and isinstance(v, numbers.Real) for k, v in stats.items()
        ):
            raise AssertionError(
                f"{_name(algo)}: stats() must be a dict of str to numbers, got {stats!r}"
            )


def check_reproducible(
    factory: Factory | str, *, num_proposals: int = 20, seeds: Sequence[int] = (0, 1)
) -> None:
    """The same seed gives the same proposals (with feedback), and ``setup`` starts over.

    Raises:
        AssertionError: Two runs with the same seed, or a run after a second
            ``setup``, propose different tokens.
    """
    factory = _as_factory(factory)
    codec = sn.encode(algorithm_test_spaces()["conditional"])
    for seed in seeds:
        runs = []
        again = _make(factory, seed)
        for algo in (_make(factory, seed), again, again):  # `again` is set up twice
            algo.setup(codec, budget=num_proposals)
            runs.append(_tokens(_drive(algo, codec, num_proposals, _reward, lag=2)))
        for i, label in ((1, "a second instance"), (2, "the same instance after setup()")):
            if runs[i] != runs[0]:
                first = next(j for j, (x, y) in enumerate(zip(runs[0], runs[i])) if x != y)
                raise AssertionError(
                    f"{_name(again)}: seed {seed} must give the same proposals, but "
                    f"{label} differs at proposal {first}: {runs[0][first]} vs {runs[i][first]}"
                )


def check_async_feedback(
    factory: Factory | str, *, rounds: int = 4, batch: int = 12, seed: int = 0
) -> None:
    """Many outstanding proposals, answered in shuffled order, round after round.

    Raises:
        AssertionError: An invalid proposal, a wrong ``outstanding`` list or
            counter, or feedback on an answered proposal that is not refused.
    """
    factory = _as_factory(factory)
    codec = sn.encode(algorithm_test_spaces()["skip"])
    algo = _make(factory, seed)
    algo.setup(codec, budget=rounds * batch)
    order = random.Random(seed)
    answered = 0
    for r in range(rounds):
        batch_props = [_propose(algo, codec, f"round {r}") for _ in range(batch)]
        if [p.id for p in algo.outstanding] != [p.id for p in batch_props]:
            raise AssertionError(
                f"{_name(algo)}: outstanding must list the {batch} unanswered proposals in "
                f"order, got ids {[p.id for p in algo.outstanding]}"
            )
        order.shuffle(batch_props)
        for p in batch_props:
            _answer(algo, p, _reward(p.tokens), f"round {r}")
            answered += 1
        if algo.outstanding or algo.num_feedback != answered:
            raise AssertionError(
                f"{_name(algo)}: after answering everything, outstanding must be empty and "
                f"num_feedback {answered}, got {len(algo.outstanding)} and {algo.num_feedback}"
            )
    try:
        algo.feedback(batch_props[0], 0.5)
    except ValueError:
        pass
    else:
        raise AssertionError(f"{_name(algo)}: a second feedback on one proposal must raise")


def check_failure_policy(factory: Factory | str, *, num_proposals: int = 40, seed: int = 0) -> None:
    """``None``/NaN/±inf close proposals without signal; unanswered ones never block.

    Drives the algorithm with every fifth proposal left unanswered and failed
    rewards mixed in, then proposes a run of failures only, answers the
    forgotten proposals late, and finally makes 30 proposals with no feedback
    at all on a 12-point space.

    Raises:
        AssertionError: ``propose``/``feedback`` raise, a proposal is invalid,
            or ``num_failed``/``outstanding``/``state_dict`` disagree with the policy.
    """
    factory = _as_factory(factory)
    failures = [None, math.nan, math.inf, -math.inf]
    codec = sn.encode(algorithm_test_spaces()["conditional"])
    algo = _make(factory, seed)
    algo.setup(codec, budget=2 * num_proposals)
    unanswered: list[Proposal] = []
    failed = 0
    for i in range(num_proposals):
        p = _propose(algo, codec, f"failure run, proposal {i}")
        if i % 5 == 4:
            unanswered.append(p)
        elif i % 3 == 0:
            _answer(algo, p, failures[(i // 3) % len(failures)], "failure run")
            failed += 1
        else:
            _answer(algo, p, _reward(p.tokens), "failure run")
    for i in range(num_proposals // 2):
        p = _propose(algo, codec, f"all-failed run, proposal {i}")
        _answer(algo, p, failures[i % len(failures)], "all-failed run")
        failed += 1
    if algo.num_failed != failed:
        raise AssertionError(f"{_name(algo)}: num_failed must be {failed}, got {algo.num_failed}")
    if [p.id for p in algo.outstanding] != [p.id for p in unanswered]:
        raise AssertionError(
            f"{_name(algo)}: never-answered proposals must stay outstanding: expected ids "
            f"{[p.id for p in unanswered]}, got {[p.id for p in algo.outstanding]}"
        )
    saved = algo.state_dict()
    if sorted(int(p["id"]) for p in saved["outstanding"]) != [p.id for p in unanswered]:
        raise AssertionError(f"{_name(algo)}: state_dict() must keep the outstanding proposals")
    for p in unanswered:
        _answer(algo, p, _reward(p.tokens), "late answers")
    # A 12-point space, no feedback at all: proposing must never block.
    small = sn.encode(algorithm_test_spaces()["anchor"])
    algo = _make(factory, seed)
    algo.setup(small, budget=10)
    for i in range(30):
        _propose(algo, small, f"no-feedback run on a 12-point space, proposal {i}")
    if len(algo.outstanding) != 30:
        raise AssertionError(f"{_name(algo)}: 30 proposals must be outstanding")


def _save_load(state: dict[str, Any]) -> dict[str, Any]:
    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def check_state_dict(
    factory: Factory | str, *, warmup: int = 25, num_proposals: int = 6, seed: int = 0
) -> None:
    """``state_dict`` survives ``torch.save``/``torch.load(weights_only=True)`` exactly.

    After ``warmup`` proposals (some still outstanding), a clone set up on the
    same codec and loaded from the saved state must list the same outstanding
    proposals and then propose the same tokens as the original, both before and
    after the outstanding proposals are answered. The saved state must not
    change when the original goes on.

    Raises:
        AssertionError: Saving or loading fails, or the clone diverges.
    """
    factory = _as_factory(factory)
    for space_name in ("skip", "picks"):
        codec = sn.encode(algorithm_test_spaces()[space_name])
        algo = _make(factory, seed)
        algo.setup(codec, budget=warmup + 2 * num_proposals)
        where = f"space {space_name!r}"
        _drive(algo, codec, warmup - 3, _reward, lag=2, where=where)
        for _ in range(3):
            _propose(algo, codec, where)  # three left outstanding
        state = algo.state_dict()
        snapshot = copy.deepcopy(state)
        try:
            loaded = _save_load(state)
        except Exception as e:  # pickling or weights_only unpickling errors of any kind
            raise AssertionError(
                f"{_name(algo)}: state_dict() must load with torch.load(weights_only=True): {e}"
            ) from None
        clone = _make(factory, seed)
        clone.setup(codec, budget=warmup + 2 * num_proposals)
        clone.load_state_dict(loaded)
        pairs = list(zip(algo.outstanding, clone.outstanding))
        if len(clone.outstanding) != 3 or any(
            (a.id, a.tokens, a.floats) != (b.id, b.tokens, b.floats) for a, b in pairs
        ):
            raise AssertionError(
                f"{_name(algo)}: the clone must list the same outstanding proposals ({where})"
            )
        for phase in ("before", "after"):
            mine = [_propose(algo, codec, where) for _ in range(num_proposals)]
            theirs = [_propose(clone, codec, where) for _ in range(num_proposals)]
            if _tokens(mine) != _tokens(theirs):
                raise AssertionError(
                    f"{_name(algo)}: a clone loaded from state_dict() must make the same "
                    f"proposals {phase} answering the outstanding ones ({where}): "
                    f"{_tokens(mine)} vs {_tokens(theirs)}"
                )
            for a, b in zip([*mine, *[p for p, _ in pairs]], [*theirs, *[q for _, q in pairs]]):
                _answer(algo, a, _reward(a.tokens), where)
                _answer(clone, b, _reward(b.tokens), f"{where}, the clone")
            pairs = []
        if not _same(state, snapshot):
            raise AssertionError(
                f"{_name(algo)}: state_dict() must be a snapshot, but it changed when the "
                f"algorithm went on ({where})"
            )


def check_beats_random(
    factory: Factory | str,
    *,
    budget: int = 100,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    margin: float = 0.035,
    num_decisions: int = 3,
    vocab_size: int = 10,
) -> None:
    """On a seeded :class:`ToyObjective`, the algorithm's final proposals beat random search.

    For each seed, a fresh algorithm runs ``budget`` trials on the toy with that
    seed (feedback straight after each proposal). The mean reward of its last
    quarter of proposals, averaged over the seeds, must exceed random search's
    mean reward (known exactly for the toy) by ``margin``. The final proposals,
    not the best one found, are compared: at ~100 trials the best of random
    search is within noise of a learner that still explores (MetaQNN spends 56 %
    of its budget on random models), while what the algorithm proposes once it
    has learned shows whether it learned. The default toy (3 decisions of 10
    tokens) is small enough that a tabular learner whose credit reaches back
    only a step or two (MetaQNN's state) still learns most of it in 100 trials.
    Deterministic: fixed seeds. The default ``margin`` lies between what random
    search and ``q_learning`` reached over other seed sets (``benchmarks/RESULTS.md``).

    Raises:
        AssertionError: The margin is not met (the message lists every seed).
    """
    factory = _as_factory(factory)
    finals, bests, randoms = [], [], []
    name = ""
    for seed in seeds:
        toy = ToyObjective(seed=seed, num_decisions=num_decisions, vocab_size=vocab_size)
        algo = _make(factory, seed)
        name = _name(algo)
        algo.setup(toy.codec, budget=budget)
        rewards = []
        for i in range(budget):
            p = _propose(algo, toy.codec, f"toy seed {seed}, proposal {i}")
            rewards.append(toy(p.tokens))
            _answer(algo, p, rewards[-1], f"toy seed {seed}")
        tail = rewards[-max(1, budget // 4) :]
        finals.append(sum(tail) / len(tail))
        bests.append(max(rewards))
        randoms.append(toy.random_mean)
    final, baseline = sum(finals) / len(finals), sum(randoms) / len(randoms)
    if not final >= baseline + margin:
        detail = ", ".join(
            f"seed {s}: {f:.3f} (best {b:.3f})" for s, f, b in zip(seeds, finals, bests)
        )
        raise AssertionError(
            f"{name}: the mean reward of its last {max(1, budget // 4)} of {budget} proposals "
            f"must beat random search's {baseline:.3f} by {margin}, but got {final:.3f} "
            f"({detail})"
        )


def check_algorithm(factory: Factory | str, *, learning: bool | None = None) -> None:
    """Runs the whole contract (see the module docstring).

    Args:
        factory: A callable ``factory(seed=s) -> Algorithm``, or a registered name.
        learning: Whether to run :func:`check_beats_random`; None runs it when the
            algorithm's ``learns`` is True.

    Raises:
        AssertionError: The first check that fails.

    Example:
        >>> from symbolic_nas import algorithms
        >>> from symbolic_nas.testing import check_algorithm
        >>> check_algorithm(lambda seed: algorithms.get("random", seed=seed))
    """
    factory = _as_factory(factory)
    check_valid_proposals(factory)
    check_reproducible(factory)
    check_async_feedback(factory)
    check_failure_policy(factory)
    check_state_dict(factory)
    if learning or (learning is None and _make(factory, 0).learns):
        check_beats_random(factory)
