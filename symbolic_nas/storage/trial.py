"""Trials and search results: what the tuner records and returns.

A *trial* is one proposal's life in the tuner: queued, running, then completed
(with a reward and metrics) or failed (with its error text); its
:class:`TrialStatus` says where it is. Trials are plain data: they serialise to
JSON records for the journal and back.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
import pathlib
import sys
from typing import Any

from symbolic_nas.space.codec import Codec
from symbolic_nas.space.dna import LazyDNA
from symbolic_nas.space.floats import floats_from_json, floats_to_json
from symbolic_nas.validation import InvalidParameterError

__all__ = ["SearchResult", "StrEnum", "Trial", "TrialStatus"]

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # pragma: no cover - Python 3.10

    class StrEnum(str, enum.Enum):
        """Python 3.11's ``enum.StrEnum``: members are strings, shown as their value."""

        def __str__(self) -> str:
            return str(self.value)

        def __format__(self, format_spec: str) -> str:
            return format(str(self.value), format_spec)


class TrialStatus(StrEnum):
    """Where a trial is in its life; the values are the strings the journal stores.

    A trial is ``QUEUED``, then ``RUNNING``, then ``COMPLETED`` (with a reward),
    ``FAILED`` (with an error) or ``PRUNED`` (stopped early by the search's pruner,
    with its last report as metrics). ``LOST`` is what an attempt comes back as when its
    worker died: the tuner runs the trial again, and a finished trial is never lost.

    Members are strings (a :class:`StrEnum`, printed and formatted as their
    value), so they compare equal to the journal's plain strings and ``json``
    writes them unchanged.

    Example:
        >>> TrialStatus("completed") is TrialStatus.COMPLETED
        True
        >>> TrialStatus.FAILED == "failed", f"{TrialStatus.FAILED}", str(TrialStatus.FAILED)
        (True, 'failed', 'failed')
        >>> [status.value for status in TrialStatus if status.is_finished()]
        ['completed', 'failed', 'pruned']
    """

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    LOST = "lost"
    PRUNED = "pruned"

    def is_finished(self) -> bool:
        """Whether a trial with this status is over (completed, failed or pruned)."""
        return self in (TrialStatus.COMPLETED, TrialStatus.FAILED, TrialStatus.PRUNED)

    @classmethod
    def parse(cls, value: Any) -> TrialStatus:
        """The status named by ``value`` (a member or its string).

        Raises:
            InvalidParameterError: If ``value`` names no status (a ``ValueError``).

        Example:
            >>> TrialStatus.parse("running")
            <TrialStatus.RUNNING: 'running'>
            >>> try:
            ...     TrialStatus.parse("done")
            ... except ValueError as e:
            ...     print(f"{type(e).__name__}: {e}")
            InvalidParameterError: `status` must be one of ('queued', ...), but got 'done'
        """
        try:
            return cls(value)
        except ValueError:
            names = tuple(status.value for status in cls)
            raise InvalidParameterError(
                f"`status` must be one of {names}, but got {value!r}"
            ) from None


@dataclasses.dataclass(eq=False)
class Trial(LazyDNA):
    """One proposal's life in the tuner.

    Attributes:
        id: The proposal id (unique within a run).
        tokens: The architecture as tokens.
        status: A :class:`TrialStatus` (a string naming one is converted).
        reward: The reward fed back to the algorithm (None when failed).
        metrics: Everything the evaluator returned (JSON-able), e.g. ``accuracy``.
        error: The error text of a failed trial.
        attempts: How many times it was started (a trial whose worker died is re-run).
        started: Wall-clock start time (seconds since the epoch) of the last attempt.
        duration: Seconds the last attempt took.
        worker: Which worker ran it.
        codec: The codec of the tokens, which :attr:`dna` needs.
        traceback: The formatted traceback of a failed trial, when there is one.
        labels: The label of every active decision's choice, by decision name, as
            journaled (None: not known; :meth:`choice_labels` then asks the codec).
        run_dir: The run directory the trial belongs to (where its kept weights
            are, see :meth:`load_model`), or None.
        floats: The exact values of float decisions the trial used, by decision
            index (from ``random``, ``evolution``, ``optuna``; see
            :mod:`symbolic_nas.space.floats`); empty: the bins' values.
    """

    id: int
    tokens: list[int]
    status: TrialStatus = TrialStatus.QUEUED
    reward: float | None = None
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    error: str | None = None
    attempts: int = 0
    started: float | None = None
    duration: float | None = None
    worker: str | None = None
    codec: Codec | None = dataclasses.field(default=None, repr=False)
    traceback: str | None = dataclasses.field(default=None, repr=False)
    labels: dict[str, str] | None = dataclasses.field(default=None, repr=False)
    run_dir: str | None = dataclasses.field(default=None, repr=False)
    floats: dict[int, float] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.status = TrialStatus.parse(self.status)

    def choice_labels(self) -> dict[str, str]:
        """The label of every active decision's choice, by decision name.

        The journaled labels, else the codec's; empty when neither is known.

        Example:
            >>> from symbolic_nas.space import encode, oneof
            >>> codec = encode({"k": oneof([3, 5]), "act": oneof(["relu", "gelu"])})
            >>> Trial(0, [1, 0], codec=codec).choice_labels()
            {'k': '5', 'act': 'relu'}
        """
        if self.labels is None and self.codec is not None:
            try:
                return self.codec.labels(self.tokens, self.floats)
            except ValueError:  # Tokens of another space: no labels.
                return {}
        return dict(self.labels or {})

    def load_model(self, space: Any, *, run_dir: str | os.PathLike[str] | None = None) -> Any:
        """The trained model of this trial: built from ``space``, with its kept weights.

        The weights are those ``sn.search(..., keep_weights=...)`` saved in the run
        directory (``weights/trial-<id>.pt``); they are loaded on the CPU with
        ``torch.load(..., weights_only=True)`` (move the model where you need it).

        Args:
            space: The searched space (or its codec); it must be the run's space.
            run_dir: The run directory (default: the one the trial came from).

        Raises:
            ValueError: If no run directory is known, or ``space`` is not the run's.
            FileNotFoundError: If the trial's weights were not kept.
        """
        from symbolic_nas.space.codec import encode
        from symbolic_nas.storage.rundir import CONFIG, space_fingerprint
        from symbolic_nas.storage.weights import load_state_dict, weights_file

        folder = run_dir if run_dir is not None else self.run_dir
        if folder is None:
            raise ValueError(
                f"`run_dir` must be given to load trial {self.id}'s model: the trial does not "
                "know its run directory"
            )
        file = weights_file(folder, self.id)
        if not file.exists():
            raise FileNotFoundError(
                f"trial {self.id}'s weights were not kept in {os.fspath(folder)!r} (no "
                f"{file.name}); "
                "search with keep_weights='best', 'all' or a number of top trials to keep them"
            )
        codec = space if isinstance(space, Codec) else encode(space)
        config_file = pathlib.Path(folder) / CONFIG
        if config_file.exists():
            config = json.loads(config_file.read_text("utf-8"))
            expected = config.get("space", {}).get("fingerprint")
            if expected is not None and expected != space_fingerprint(codec):
                raise ValueError(
                    f"`space` must be the space of run {os.fspath(folder)!r}, but got another "
                    "(its fingerprint differs)"
                )
        model = codec.materialize(self.tokens, self.floats)
        model.load_state_dict(load_state_dict(file))
        return model

    @property
    def done(self) -> bool:
        """Whether the trial is over (its status is finished)."""
        return TrialStatus(self.status).is_finished()

    def to_record(self) -> dict[str, Any]:
        """A JSON-able record (the codec and the labels are not included: the journal's
        ``end`` record holds the labels beside it; ``floats`` only when there are some)."""
        record = {
            "id": self.id,
            "tokens": list(self.tokens),
            "status": TrialStatus(self.status).value,
            "reward": self.reward,
            "metrics": dict(self.metrics),
            "error": self.error,
            "attempts": self.attempts,
            "started": self.started,
            "duration": self.duration,
            "worker": self.worker,
            "traceback": self.traceback,
        }
        if self.floats:
            record["floats"] = floats_to_json(self.floats)
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any], codec: Codec | None = None) -> Trial:
        """Inverse of :meth:`to_record`."""
        return cls(
            id=int(record["id"]),
            tokens=[int(t) for t in record["tokens"]],
            status=record.get("status", TrialStatus.QUEUED),
            reward=record.get("reward"),
            metrics=dict(record.get("metrics") or {}),
            error=record.get("error"),
            attempts=int(record.get("attempts", 0)),
            started=record.get("started"),
            duration=record.get("duration"),
            worker=record.get("worker"),
            codec=codec,
            traceback=record.get("traceback"),
            floats=floats_from_json(record.get("floats")),
        )


@dataclasses.dataclass
class SearchResult:
    """What ``sn.search`` returns.

    Attributes:
        trials: Every finished trial (completed, failed and pruned), by id.
        codec: The codec of the searched space.
        run_dir: The run directory, or None for an in-memory run.
        algorithm: The algorithm's registered name.
        objectives: The search's ``objectives`` (``{metric: "max" | "min"}``), or None.
    """

    trials: list[Trial]
    codec: Codec | None = None
    run_dir: str | None = None
    algorithm: str | None = None
    objectives: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if self.run_dir is not None:
            for trial in self.trials:
                if trial.run_dir is None:
                    trial.run_dir = self.run_dir

    @property
    def completed(self) -> list[Trial]:
        return [t for t in self.trials if t.status == TrialStatus.COMPLETED]

    @property
    def failed(self) -> list[Trial]:
        return [t for t in self.trials if t.status == TrialStatus.FAILED]

    @property
    def pruned(self) -> list[Trial]:
        """Trials the search's pruner stopped early (never :attr:`best`)."""
        return [t for t in self.trials if t.status == TrialStatus.PRUNED]

    @property
    def best(self) -> Trial | None:
        """The completed trial with the highest finite reward (lowest id on ties)."""
        return next(iter(self.top(1)), None)

    def top(self, k: int, *, distinct: bool = False) -> list[Trial]:
        """The ``k`` completed trials with the highest rewards, best first (lowest id on ties).

        Args:
            k: How many (fewer when fewer trials completed).
            distinct: Keep one trial per architecture (its best), e.g. the finalists of
                a shared-weight search, which scores an architecture again each time it
                is proposed.

        Example:
            >>> trials = [Trial(i, [t], status="completed", reward=r)
            ...           for i, (t, r) in enumerate([(0, 0.5), (1, 0.9), (1, 0.8), (2, 0.7)])]
            >>> [t.id for t in SearchResult(trials).top(3)]
            [1, 2, 3]
            >>> [t.id for t in SearchResult(trials).top(3, distinct=True)]
            [1, 3, 0]
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ValueError(f"`k` must be an int >= 0, but got {k!r}")
        ranked = [
            (t.reward, t)
            for t in self.completed
            if t.reward is not None and math.isfinite(t.reward)
        ]
        ranked.sort(key=lambda rt: (-rt[0], rt[1].id))
        if distinct:
            seen: set[tuple[int, ...]] = set()
            unique = []
            for reward, trial in ranked:
                if tuple(trial.tokens) not in seen:
                    seen.add(tuple(trial.tokens))
                    unique.append((reward, trial))
            ranked = unique
        return [t for _, t in ranked[:k]]

    def pareto_front(self, objectives: dict[str, str] | None = None) -> list[Trial]:
        """The completed trials no other completed trial dominates, by the first objective.

        A trial dominates another when it is at least as good in every objective
        and better in one. Trials that break a constraint (``metrics["feasible"]``
        is False) or lack an objective are left out; trials with equal objective
        values appear once (the lowest id).

        Args:
            objectives: ``{metric: "max" | "min"}``; None: the search's ``objectives``.

        Raises:
            ValueError: If neither gives the objectives.

        Example:
            >>> import symbolic_nas as sn
            >>> space = {"w": sn.oneof([1, 2, 3])}
            >>> result = sn.search(space, lambda a: {"acc": a["w"] / 3, "size": a["w"] ** 2},
            ...                    objectives={"acc": "max", "size": "min"},
            ...                    algorithm="random", num_trials=6, seed=0)
            >>> [t.metrics["acc"] for t in result.pareto_front()]
            [1.0, 0.6666666666666666, 0.3333333333333333]
        """
        from symbolic_nas.algorithms.pareto import pareto_indices

        directions = objectives if objectives is not None else self.objectives
        if not directions:
            raise ValueError(
                "`objectives` must be given ({metric: 'max' | 'min'}) for a search run without "
                "them, but got None"
            )
        candidates = [
            t
            for t in self.completed
            if t.metrics.get("feasible", True) is not False
            and all(_is_number(t.metrics.get(name)) for name in directions)
        ]
        points = [
            [t.metrics[n] if d == "max" else -t.metrics[n] for n, d in directions.items()]
            for t in candidates
        ]
        unique: dict[tuple[float, ...], Trial] = {}
        for i in sorted(pareto_indices(points), key=lambda i: ([-x for x in points[i]], i)):
            unique.setdefault(tuple(points[i]), candidates[i])  # ties: the lowest id
        return list(unique.values())

    def to_records(self) -> list[dict[str, Any]]:
        """One flat, JSON-able dict per trial, by id.

        Keys, in order: ``id``, ``status``, ``reward``, the label of every active
        decision (by decision name; an inactive one of a conditional space is
        missing), every metric but ``reward`` (by name), then ``error``,
        ``attempts``, ``started`` (seconds since the epoch), ``duration``
        (seconds), ``worker`` and ``tokens``. A decision or metric whose name is
        already taken by an earlier key gets the prefix ``decision:`` or ``metric:``.
        A float decision with an exact value (``trial.floats``) holds the number
        when the trial knows its codec (``sn.search``'s result, ``sn.load_run`` with
        the space), else its label (six significant digits).

        Example:
            >>> import symbolic_nas as sn
            >>> space = {"width": sn.oneof([8, 16]), "act": sn.oneof(["relu", "gelu"])}
            >>> result = sn.search(space, lambda a: {"reward": a["width"] / 16, "params": 3},
            ...                    algorithm="random", num_trials=2, seed=0)
            >>> record = result.to_records()[0]
            >>> {k: record[k] for k in ("id", "reward", "width", "act", "params")}
            {'id': 0, 'reward': 1.0, 'width': '16', 'act': 'gelu', 'params': 3}
        """
        return [_flat_record(trial) for trial in self.trials]

    def to_dataframe(self) -> Any:
        """:meth:`to_records` as a ``pandas.DataFrame`` (one row per trial, indexed by id).

        Raises:
            ImportError: If pandas is not installed (``pip install symbolic-nas[pandas]``
                or ``pip install pandas``).
        """
        try:
            import pandas
        except ImportError:
            raise ImportError(
                "`to_dataframe` needs pandas, which is not installed; install the `pandas` "
                "extra (pip install 'symbolic-nas[pandas]') or pandas itself, or use "
                "to_records()"
            ) from None
        records = self.to_records()
        frame = pandas.DataFrame.from_records(records, columns=_columns(records) or ["id"])
        return frame.set_index("id", drop=False)


_FIXED = ("id", "status", "reward")
_TIMES = ("error", "attempts", "started", "duration", "worker", "tokens")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _flat_record(trial: Trial) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": trial.id,
        "status": TrialStatus(trial.status).value,
        "reward": trial.reward,
    }

    def put(name: str, value: Any, prefix: str) -> None:
        key = name if name not in record and name not in _TIMES else f"{prefix}:{name}"
        record[key] = value

    exact = {}
    if trial.floats and trial.codec is not None:
        exact = {trial.codec.decisions[d].name: v for d, v in trial.floats.items()}
    for name, label in trial.choice_labels().items():
        put(name, exact.get(name, label), "decision")
    for name, value in trial.metrics.items():
        if name != "reward":
            put(name, value, "metric")
    record.update(
        error=trial.error,
        attempts=trial.attempts,
        started=trial.started,
        duration=trial.duration,
        worker=trial.worker,
        tokens=list(trial.tokens),
    )
    return record


def _columns(records: list[dict[str, Any]]) -> list[str]:
    """Every key of ``records``, in order of first appearance (times last)."""
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(k for k in record if k not in _TIMES))
    if records:
        names.update(dict.fromkeys(_TIMES))
    return list(names)
