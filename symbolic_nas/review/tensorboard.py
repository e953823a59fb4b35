"""Reviewing a search in TensorBoard: scalars, algorithm statistics, HParams, architectures.

:class:`TensorBoardCallback` writes, under its ``logdir``:

- the run ``.`` (the logdir itself): per finished trial, at step = number of
  finished trials, the scalars ``search/reward`` (completed trials),
  ``search/best_reward``, ``search/failures`` (cumulative), ``search/trials_per_second``
  (trials finished in this session per second since it started),
  ``search/trial_seconds`` and every key of ``algorithm.stats()`` as
  ``algorithm/<key>``, and a stateful evaluator's ``stats()`` (a weight-sharing pool's
  training loss and accuracy, its parameters and modules) as ``evaluator/<key>``; the
  text ``search/best_architecture`` whenever the best
  reward improves; and the HParams experiment (every decision of the space as a
  string hparam whose domain is its labels plus :data:`INACTIVE`, except floats:
  a number in the placeholder's interval, and for a log-scaled float also its
  ``log10(<name>)``, see :func:`log10_hparam`; and the metric tags);
- one run per trial, ``trials/<id>`` (ids zero-padded to five digits): the HParams
  session (the label of every decision, :data:`INACTIVE` for decisions the trial
  does not use, floats as numbers (a trial's exact value where it has one, see
  :mod:`symbolic_nas.space.floats`), left unset when inactive; status success or
  failure), the scalars ``trial/reward`` and
  ``trial/<metric>`` for every numeric metric (at step = trial id, so the scalars
  dashboard plots them against the trial id), and the text ``trial/architecture``
  (decisions, tokens, reward or error); and the trial's intermediate reports
  (``sn.report``) as ``report/value`` and ``report/<metric>`` at step = the report's
  step (its learning curve; when a step is fractional, all are multiplied by 1000).

The HParams metric columns (shown as ``reward``, ``accuracy``, ...) are the reward
and the numeric metrics of the first completed trial (or the ``metrics`` given),
fixed when that trial finishes: TensorBoard keeps the first experiment
description it reads, also across resumed runs. Hide the trial runs in the
scalars dashboard with the run filter ``^\\.$``.

Nothing here builds a model or imports TensorFlow: events go through
:class:`~symbolic_nas.review.events.EventFile`. Creating a trial's run (a
folder and a file) can cost milliseconds on a busy disk, so a background thread
creates the runs of each flush interval in one batch; the hooks wait for it only
at the end of the search.
"""

from __future__ import annotations

import collections
import math
import numbers
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ClassVar

from symbolic_nas.review.events import (
    FAILURE,
    SUCCESS,
    EventFile,
    SessionStartEncoder,
    event_record,
    experiment_value,
    session_end_value,
    text_value,
    write_event_file,
)
from symbolic_nas.space.codec import Codec
from symbolic_nas.space.decisions import FLOAT, float_label
from symbolic_nas.storage.trial import SearchResult, Trial, TrialStatus
from symbolic_nas.training.reports import Report
from symbolic_nas.tuner.callbacks import Callback, SearchContext
from symbolic_nas.tuner.evaluators import is_stateful
from symbolic_nas.validation import Interval, Satisfies, SequenceOf, validate_params

__all__ = ["INACTIVE", "TensorBoardCallback", "numeric_metrics", "trial_markdown", "trial_run"]

#: The HParams value of a decision that a trial's architecture does not use
#: (part of every decision's domain). A decision with a label equal to it
#: gets :data:`INACTIVE_FALLBACK` instead.
INACTIVE = "-"
INACTIVE_FALLBACK = "(inactive)"

#: The parent folder of the per-trial runs.
TRIALS_DIR = "trials"
#: The tag prefix of the scalars and texts in the per-trial runs.
TRIAL_PREFIX = "trial/"

_MAX_ERROR_CHARS = 2000


def trial_run(trial_id: int) -> str:
    """The run name of a trial (relative to the logdir).

    Example:
        >>> trial_run(42)
        'trials/00042'
    """
    return f"{TRIALS_DIR}/{_trial_dirname(trial_id)}"


def _trial_dirname(trial_id: int) -> str:
    return f"{trial_id:05d}"


def numeric_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The real-valued (not bool) top-level entries of a trial's metrics, as floats.

    Example:
        >>> numeric_metrics({"accuracy": 0.9, "ok": True, "name": "x", "params": 12})
        {'accuracy': 0.9, 'params': 12.0}
    """
    return {
        key: float(value)
        for key, value in metrics.items()
        if isinstance(value, numbers.Real) and not isinstance(value, bool)
    }


def log10_hparam(name: str) -> str:
    """The HParams name of the log10 column of a log-scaled float decision ``name``.

    TensorBoard's HParams dashboard starts every numeric axis linear (the scale is
    a per-column option of the view, not part of the logged experiment), so a
    log-scaled float is shown twice: its value, and its log10 on a linear axis.

    Example:
        >>> log10_hparam("lr")
        'log10(lr)'
    """
    return f"log10({name})"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


class _SpaceTables:
    """Per-space lookup tables: hparam domains, Markdown rows, the session encoder."""

    def __init__(self, codec: Codec):
        self.codec = codec
        decisions = codec.decisions
        # Floats are numeric hparams (an interval; unset when inactive); the rest strings.
        self.strings = [d.index for d in decisions if d.kind != FLOAT]
        self.floats = [d for d in decisions if d.kind == FLOAT]
        strings = [decisions[i] for i in self.strings]
        inactive = [INACTIVE_FALLBACK if INACTIVE in d.labels else INACTIVE for d in strings]
        self.domains = {d.name: [*d.labels, i] for d, i in zip(strings, inactive)}
        self.intervals: dict[str, tuple[float, float]] = {}
        for d in self.floats:
            low, high = float(d.low), float(d.high)  # type: ignore[arg-type]
            self.intervals[d.name] = (low, high)
            if d.scale == "log":  # TensorBoard's axes start linear: a log10 column too
                self.intervals[log10_hparam(d.name)] = (math.log10(low), math.log10(high))
        self.inactive_choices = [len(d.labels) for d in decisions]
        self.rows = [
            [f"| {_cell(d.name)} | {_cell(label)} |" for label in d.labels] for d in decisions
        ]
        self.encoder = SessionStartEncoder(self.domains)

    def trace(self, trial: Trial) -> list[int] | str:
        """The decision index of each token, or the error text of invalid tokens."""
        try:
            return self.codec.trace(trial.tokens)
        except ValueError as e:
            return str(e)

    def choices(self, trace: list[int] | str, tokens: Sequence[int]) -> list[int]:
        """Each decision's index into its hparam domain (inactive ones: the placeholder)."""
        choices = list(self.inactive_choices)
        if not isinstance(trace, str):
            for d, t in zip(trace, tokens):
                choices[d] = t
        return [choices[d] for d in self.strings]

    def numbers(
        self,
        trace: list[int] | str,
        tokens: Sequence[int],
        exact: Mapping[int, float] | None = None,
    ) -> dict[str, float]:
        """The value of each active float decision (its ``exact`` value where there is
        one, else its bin's), and its log10 for log-scaled ones."""
        if isinstance(trace, str) or not self.floats:
            return {}
        chosen = dict(zip(trace, tokens))
        exact = exact or {}
        out: dict[str, float] = {}
        for d in self.floats:
            if d.index in chosen:
                value = float(exact.get(d.index, d.values[chosen[d.index]]))
                out[d.name] = value
                if d.scale == "log":
                    out[log10_hparam(d.name)] = math.log10(value)
        return out

    def markdown(self, trial: Trial, trace: list[int] | str) -> str:
        head = f"**trial {trial.id}**: {trial.status}"
        if trial.reward is not None:
            head += f", reward {trial.reward:.6g}"
        if trial.duration is not None:
            head += f", {trial.duration:.3g} s"
        lines = [head, ""]
        if isinstance(trace, str):
            lines += [f"invalid tokens: {_cell(trace)}", ""]
            trace = []
        lines += ["| decision | choice |", "|---|---|"]
        rows, decisions, exact = self.rows, self.codec.decisions, trial.floats
        lines += [
            f"| {_cell(decisions[d].name)} | {float_label(exact[d])} |"
            if d in exact
            else rows[d][t]
            for d, t in zip(trace, trial.tokens)
        ]
        lines += ["", f"tokens: `{list(trial.tokens)}`"]
        metrics = {k: v for k, v in trial.metrics.items() if k != "reward"}
        if metrics:
            lines.append("metrics: " + ", ".join(f"{k}={v!r}" for k, v in metrics.items()))
        error = getattr(trial, "traceback", None) or trial.error  # the traceback when kept
        if error:
            error = error[-_MAX_ERROR_CHARS:]
            lines += ["", "```", error.replace("```", "'''"), "```"]
        return "\n".join(lines)


def trial_markdown(trial: Trial, codec: Codec) -> str:
    """A Markdown description of a trial: status, reward, decisions, tokens, error.

    Example:
        >>> import symbolic_nas as sn
        >>> from symbolic_nas.storage.trial import Trial
        >>> codec = sn.encode({"k": sn.oneof([3, 5])})
        >>> text = trial_markdown(Trial(7, [1], status="completed", reward=0.5), codec)
        >>> print(text.splitlines()[0])
        **trial 7**: completed, reward 0.5
        >>> "| k | 5 |" in text
        True
    """
    tables = _SpaceTables(codec)
    return tables.markdown(trial, tables.trace(trial))


def _report_events(reports: list[Report]) -> bytes:
    """A trial's reports as events: ``report/value`` and ``report/<metric>`` at step = the
    report's step, or 1000 times it when some step is fractional (``report_every``)."""
    scale = 1 if all(float(r.step).is_integer() for r in reports) else 1000
    events = []
    for r in reports:
        scalars = {"report/value": r.value}
        scalars.update({f"report/{k}": v for k, v in numeric_metrics(r.metrics).items()})
        events.append(event_record(step=round(r.step * scale), scalars=scalars))
    return b"".join(events)


def _write_runs(runs: list[tuple[str, bytes]]) -> None:
    for directory, record in runs:
        write_event_file(directory, record)


class TensorBoardCallback(Callback):
    """Logs a search for TensorBoard (scalars, algorithm statistics, HParams, texts).

    See the module docstring for the layout. Events of the main run are
    buffered and flushed every ``flush_secs`` (checked when a trial ends) and at
    the end of the search; each trial's run is encoded when the trial ends and
    written, with the others of its flush interval, by a background thread
    (``on_search_end`` waits for it and raises the first write error; earlier
    ones surface at a later flush). A resumed run
    appends a new event file to the main run, keeps counting steps from the
    trials already finished, and writes runs only for finished trials that have
    none yet.

    Args:
        logdir: The TensorBoard log directory (the tuner uses ``<run_dir>/tensorboard``).
        flush_secs: Seconds between flushes (0 flushes after every trial): TensorBoard
            sees a trial at most this long after it ends.
        metrics: Names of the trials' metrics to show as HParams metric columns
            (``reward`` always is one); None takes the numeric metrics of the first
            completed trial.

    Example:
        >>> import tempfile
        >>> import symbolic_nas as sn
        >>> from symbolic_nas import algorithms
        >>> from symbolic_nas.tuner.callbacks import SearchContext
        >>> from symbolic_nas.storage.trial import Trial
        >>> codec = sn.encode({"k": sn.oneof([3, 5])})
        >>> context = SearchContext(codec=codec, algorithm=algorithms.get("random"), num_trials=1)
        >>> tb = TensorBoardCallback(tempfile.mkdtemp())
        >>> tb.on_search_start(context)
        >>> trial = Trial(0, [1], status="completed", reward=0.5, metrics={"accuracy": 0.5})
        >>> context.trials.append(trial)
        >>> tb.on_trial_end(trial, context)
        >>> tb.on_search_end(SearchResult(context.trials), context)
        >>> sorted(os.listdir(os.path.join(tb.logdir, "trials")))
        ['00000']
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "logdir": ["path"],
        "flush_secs": [Interval(float, 0, None)],
        "metrics": [
            SequenceOf(
                Satisfies(lambda n: isinstance(n, str) and bool(n), "a non-empty str", [""]),
                description="a sequence of non-empty metric names",
            ),
            None,
        ],
    }

    def __init__(
        self,
        logdir: str | os.PathLike[str],
        *,
        flush_secs: float = 2.0,
        metrics: Sequence[str] | None = None,
    ):
        validate_params(
            self._parameter_constraints,
            {"logdir": logdir, "flush_secs": flush_secs, "metrics": metrics},
        )
        self.logdir = os.fspath(logdir)
        self.flush_secs = float(flush_secs)
        self.metrics = None if metrics is None else list(dict.fromkeys(["reward", *metrics]))
        self._main: EventFile | None = None
        self._io: ThreadPoolExecutor | None = None
        self._pending: collections.deque[Future[None]] = collections.deque()
        self._runs: list[tuple[str, bytes]] = []  # trial runs not yet handed to the thread
        self._reports: dict[int, list[Report]] = {}  # reports of running trials

    # ------------------------------------------------------------------ hooks

    def on_search_start(self, context: SearchContext) -> None:
        self._close()
        self._tables = _SpaceTables(context.codec)
        now = time.time()
        self._start_time = context.start_time or now
        self._main = EventFile(self.logdir)
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tensorboard-io")
        self._last_flush = now
        self._finished = self._finished_at_start = len(context.trials)
        self._failures = sum(t.status == TrialStatus.FAILED for t in context.trials)
        best = context.best
        self._best = best.reward if best is not None else None
        self._metric_names = self.metrics
        self._experiment_written = False
        trials_dir = os.path.join(self.logdir, TRIALS_DIR)
        logged = set(os.listdir(trials_dir)) if os.path.isdir(trials_dir) else set()
        for trial in context.trials:
            if _trial_dirname(trial.id) not in logged:
                trace = self._tables.trace(trial)
                self._write_trial_run(trial, trace, self._tables.markdown(trial, trace))
        completed = next((t for t in context.trials if t.status == TrialStatus.COMPLETED), None)
        if self._metric_names is not None or completed is not None:
            self._write_experiment(completed)
        self._flush()

    def on_trial_report(
        self, trial: Trial, report: Report, pruned: bool, context: SearchContext
    ) -> None:
        """Keeps the report for the trial's run (written when the trial ends)."""
        self._reports.setdefault(trial.id, []).append(report)

    def on_trial_end(self, trial: Trial, context: SearchContext) -> None:
        main = self._require_started()
        tables = self._tables
        now = time.time()
        self._finished += 1
        scalars: dict[str, float] = {}
        improved = False
        if trial.status == TrialStatus.FAILED:
            self._failures += 1
        elif trial.reward is not None and math.isfinite(trial.reward):
            scalars["search/reward"] = trial.reward
            if self._best is None or trial.reward > self._best:
                self._best = trial.reward
                improved = True
        if self._best is not None:
            scalars["search/best_reward"] = self._best
        scalars["search/failures"] = self._failures
        elapsed = now - self._start_time
        if elapsed > 0:
            scalars["search/trials_per_second"] = (
                self._finished - self._finished_at_start
            ) / elapsed
        if trial.duration is not None:
            scalars["search/trial_seconds"] = trial.duration
        for key, value in context.algorithm.stats().items():
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                scalars[f"algorithm/{key}"] = float(value)
        if is_stateful(context.evaluator) and callable(getattr(context.evaluator, "stats", None)):
            for key, value in context.evaluator.stats().items():
                if isinstance(value, numbers.Real) and not isinstance(value, bool):
                    scalars[f"evaluator/{key}"] = float(value)
        trace = tables.trace(trial)
        markdown = tables.markdown(trial, trace)
        values = [text_value("search/best_architecture", markdown)] if improved else []
        main.write(values, step=self._finished, wall_time=now, scalars=scalars)
        self._write_trial_run(trial, trace, markdown)
        if not self._experiment_written and trial.status == TrialStatus.COMPLETED:
            self._write_experiment(trial)
        if now - self._last_flush >= self.flush_secs:
            self._flush()
            self._last_flush = now

    def on_search_end(self, result: SearchResult, context: SearchContext) -> None:
        self._require_started()
        if not self._experiment_written:
            self._write_experiment(None)
        self._close()

    # ------------------------------------------------------------------ writing

    def _require_started(self) -> EventFile:
        if self._main is None:
            raise RuntimeError("TensorBoardCallback.on_search_start must be called first")
        return self._main

    def _flush(self) -> None:
        """Flushes the main run and hands the trial runs written since to the thread."""
        self._require_started().flush()
        while self._pending and self._pending[0].done():
            self._pending.popleft().result()  # raises the first failed write
        if self._runs:
            assert self._io is not None  # started and closed with the main file
            runs, self._runs = self._runs, []
            self._pending.append(self._io.submit(_write_runs, runs))

    def _close(self) -> None:
        """Closes the main file, waits for the trial runs still being written and
        raises the first error of those writes."""
        if self._main is not None:
            self._flush()
            self._main.close()
            self._main = None
        if self._io is not None:
            self._io.shutdown(wait=True)
            self._io = None
        pending, self._pending = self._pending, collections.deque()
        for future in pending:
            future.result()

    def _write_experiment(self, completed: Trial | None) -> None:
        if self._metric_names is None:
            found = numeric_metrics(completed.metrics) if completed is not None else {}
            self._metric_names = list(dict.fromkeys(["reward", *found]))
        metrics = {TRIAL_PREFIX + name: name for name in self._metric_names}
        value = experiment_value(
            self._tables.domains,
            metrics,
            time_created_secs=self._start_time,
            intervals=self._tables.intervals,
        )
        self._require_started().write([value], step=0)
        self._experiment_written = True

    def _write_trial_run(self, trial: Trial, trace: list[int] | str, markdown: str) -> None:
        tables = self._tables
        run_name = trial_run(trial.id)
        started = trial.started if trial.started is not None else time.time()
        ended = started + (trial.duration or 0.0)
        scalars = numeric_metrics(trial.metrics)
        if trial.reward is not None:
            scalars["reward"] = float(trial.reward)
        scalars = {TRIAL_PREFIX + name: value for name, value in scalars.items()}
        status = SUCCESS if trial.status != TrialStatus.FAILED else FAILURE
        choices = tables.choices(trace, trial.tokens)
        numbers = tables.numbers(trace, trial.tokens, trial.floats)
        values = [
            tables.encoder.value(
                choices, group_name=run_name, start_time_secs=started, numbers=numbers
            ),
            text_value(TRIAL_PREFIX + "architecture", markdown),
            session_end_value(status, end_time_secs=ended),
        ]
        record = event_record(values, step=trial.id, wall_time=ended, scalars=scalars)
        record += _report_events(self._reports.pop(trial.id, []))
        self._runs.append((os.path.join(self.logdir, run_name), record))
