"""Running one trial anywhere: in the driver, in a worker process or in a Ray actor.

An :class:`Evaluation` holds the space and the user's evaluator. It is sent to
each worker once (pickled with cloudpickle by :mod:`symbolic_nas.tuner.pickling`,
so closures such as ``sn.annotate`` lambda rules travel too) and then runs
:class:`Task` after :class:`Task`, turning each into an :class:`Outcome`:
completed with a reward and metrics, or failed with the error text. No exception
of a trial escapes :meth:`Evaluation.run` (``SystemExit`` and a
``KeyboardInterrupt`` raised by code included), only the user's own Ctrl-C does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import numbers
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch

from symbolic_nas.space.annotate import describe_failure
from symbolic_nas.space.codec import Codec, encode
from symbolic_nas.storage.journal import encode_record
from symbolic_nas.storage.trial import TrialStatus
from symbolic_nas.storage.weights import state_dict_bytes
from symbolic_nas.training.reports import Report, TrialContext, TrialPruned, reporting
from symbolic_nas.tuner.evaluators import input_of

__all__ = ["Evaluation", "Outcome", "Task", "TrialTimeout", "describe_error", "normalize_result"]


@dataclasses.dataclass(frozen=True)
class Task:
    """One attempt at a trial, as sent to a worker.

    Attributes:
        trial_id: The trial (proposal) id.
        tokens: The architecture.
        seed: Seed of torch's CPU generator during the evaluation (None: unseeded).
        attempt: 1 for the first attempt, 2 after a lost worker, ...
        keep_weights: Send the trained model's state dict back with the outcome
            when the reward is at least this (``-inf``: always; None: never).
        floats: The exact values of float decisions (see
            :mod:`symbolic_nas.space.floats`); an evaluator of ``input="tokens"``
            sees the tokens alone (the nearest bins).
        budget: The resource the pruner's schedule gives the trial (epochs), which the
            evaluator reads as ``sn.current_trial().budget``; None: its own choice.
    """

    trial_id: int
    tokens: list[int]
    seed: int | None = None
    attempt: int = 1
    keep_weights: float | None = None
    floats: dict[int, float] = dataclasses.field(default_factory=dict)
    budget: float | None = None


@dataclasses.dataclass
class Outcome:
    """What became of a task.

    Attributes:
        trial_id: The trial id.
        status: ``TrialStatus.COMPLETED``, ``FAILED``, ``PRUNED`` (stopped by the
            pruner; its metrics are its last report) or ``LOST`` (the worker died; the
            trial is run again); a string naming one is converted.
        reward: The reward of a completed trial.
        metrics: What the evaluator returned (JSON-able).
        error: ``"ExceptionType: message"`` of a failed or lost trial.
        traceback: The formatted traceback of a failed trial, when there is one.
        started: Wall-clock start (seconds since the epoch).
        duration: Seconds the attempt took.
        worker: Which worker ran it.
        weights: The trained model's state dict (``torch.save`` bytes, tensors on the
            CPU) when the task asked to keep it (see :attr:`Task.keep_weights`).
        weights_error: Why the weights could not be kept, when they could not.
    """

    trial_id: int
    status: TrialStatus
    reward: float | None = None
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    error: str | None = None
    traceback: str | None = None
    started: float | None = None
    duration: float | None = None
    worker: str | None = None
    weights: bytes | None = dataclasses.field(default=None, repr=False)
    weights_error: str | None = None

    def __post_init__(self) -> None:
        self.status = TrialStatus.parse(self.status)


#: An inline time limit that strikes during an import retries this often (seconds) ...
_IMPORT_RETRY = 0.05
#: ... for at most this long, then interrupts the import all the same.
_IMPORT_GRACE = 60.0


class TrialTimeout(BaseException):  # Like KeyboardInterrupt.
    """Raised inside an inline evaluation when it runs past its time limit.

    It derives from ``BaseException`` so that an evaluator's ``except Exception``
    does not swallow it.
    """


def normalize_result(value: Any) -> tuple[float, dict[str, Any]]:
    """Reads an evaluator's return value as ``(reward, metrics)``.

    A real number is the reward (metrics are then empty); a mapping must hold a
    ``"reward"`` and is kept whole as the metrics (it must be JSON-able). Scalars
    of torch and numpy (0-d tensors and arrays, ``np.float32(...)``) are
    converted to Python numbers, at any depth of the metrics.

    Raises:
        TypeError: If the value is neither, or the metrics cannot be stored.
        ValueError: If the reward is NaN or infinite.

    Example:
        >>> normalize_result(0.5)
        (0.5, {})
        >>> normalize_result({"reward": 0.9, "accuracy": 0.9})
        (0.9, {'reward': 0.9, 'accuracy': 0.9})
        >>> normalize_result({"reward": torch.tensor(0.5), "loss": [torch.tensor(2.0)]})
        (0.5, {'reward': 0.5, 'loss': [2.0]})
    """
    if isinstance(value, Mapping):
        if "reward" not in value:
            raise TypeError(
                "`evaluate` must return a float or a dict with a 'reward' key, but got a dict "
                f"with keys {sorted(map(str, value))}"
            )
        metrics = {key: _plain(item) for key, item in value.items()}
        reward = _as_reward(metrics["reward"])
        metrics["reward"] = reward
        try:
            encode_record(metrics)
        except TypeError as e:
            hint = (
                " (convert tensors with .tolist() or .item())"
                if "Tensor" in str(e) or "ndarray" in str(e)
                else ""
            )
            raise TypeError(
                f"`evaluate` must return JSON-able metrics, but its {e}{hint}"
            ) from None
    else:
        reward, metrics = _as_reward(value), {}
    if not math.isfinite(reward):
        raise ValueError(f"`evaluate` must return a finite reward, but got {reward!r}")
    return reward, metrics


def _plain(value: Any) -> Any:
    """``value`` with torch and numpy scalars (0-d tensors and arrays) made Python numbers."""
    if isinstance(value, torch.Tensor):
        return value.item() if value.dim() == 0 else value
    if isinstance(value, (np.generic, np.ndarray)):
        return value.item() if value.ndim == 0 else value
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_plain(item) for item in value]
        return tuple(items) if type(value) is tuple else items
    return value


def _as_reward(value: Any) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.item())
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    text = repr(value)
    raise TypeError(
        "`evaluate` must return a float or a dict with a 'reward' key, but got "
        f"{text if len(text) <= 80 else text[:77] + '...'}"
    )


class Evaluation:
    """The space and the evaluator, run on token sequences.

    The codec is compiled on first use in each process and never pickled.

    Args:
        space: The search space (or its codec, when used in-process only).
        evaluate: A callable of a built model, or of the tokens / DNA when
            declared with ``sn.evaluator(input=...)``.

    Example:
        >>> import symbolic_nas as sn
        >>> evaluation = Evaluation({"k": sn.oneof([3, 5])}, lambda model: model["k"] / 10)
        >>> outcome = evaluation.run(Task(trial_id=0, tokens=[1]))
        >>> outcome.status, outcome.reward
        (<TrialStatus.COMPLETED: 'completed'>, 0.5)
        >>> evaluation.run(Task(trial_id=1, tokens=[7])).error.split(":")[0]
        'ValueError'
    """

    def __init__(self, space: Any, evaluate: Callable[[Any], Any]) -> None:
        if not callable(evaluate):
            raise TypeError(f"`evaluate` must be callable, but got {evaluate!r}")
        self.input = input_of(evaluate)
        self.space = space.space if isinstance(space, Codec) else space
        self.evaluate = evaluate
        self._codec = space if isinstance(space, Codec) else None
        self.worker = "driver"
        #: Delivers a trial's reports to the driver and returns whether to stop; set by
        #: the executor where the evaluation runs (None: reports are not delivered).
        self.reporter: Callable[[Report], bool] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_codec"] = None
        state["reporter"] = None
        return state

    @property
    def codec(self) -> Codec:
        if self._codec is None:
            self._codec = encode(self.space)
        return self._codec

    def run(self, task: Task, *, timeout: float | None = None) -> Outcome:
        """Runs one task; every exception becomes a failed outcome.

        ``SystemExit``, ``KeyboardInterrupt`` and any other exception the
        evaluator raises fail the trial. Only a ``SIGINT`` that reaches this
        process during the evaluation (the user's Ctrl-C) is raised as
        ``KeyboardInterrupt``, also when the evaluator caught it; the trial is
        then not recorded and runs again on resume.

        Args:
            task: The task.
            timeout: In-process time limit in seconds (``SIGALRM``; main thread
                on POSIX only), or None.
        """
        started, start = time.time(), time.perf_counter()
        outcome = Outcome(task.trial_id, TrialStatus.FAILED, started=started, worker=self.worker)
        out_of_memory = False
        alarm, interrupt = _Alarm(timeout), _UserInterrupt()
        context = TrialContext(task.trial_id, self.reporter or _deliver_nowhere, budget=task.budget)
        try:
            with interrupt, alarm, _seeded(task.seed), reporting(context):
                argument = self._argument(task.tokens, task.floats)
                value = self.evaluate(argument)
                if context.pruned:  # The evaluator caught TrialPruned: the decision stands.
                    raise TrialPruned(f"trial {task.trial_id} was pruned")
                outcome.reward, outcome.metrics = normalize_result(value)
                outcome.status = TrialStatus.COMPLETED
                if task.keep_weights is not None and outcome.reward >= task.keep_weights:
                    _keep_weights(outcome, argument)
                del argument
        except TrialTimeout:
            pass
        except TrialPruned:  # By the pruner, or raised by the evaluator itself.
            outcome.status = TrialStatus.PRUNED
            outcome.metrics = context.last.as_metrics() if context.last is not None else {}
        except BaseException as e:  # Whatever the evaluator raises, the search goes on...
            if interrupt.fired and isinstance(e, KeyboardInterrupt):
                raise  # ...except for the user's own Ctrl-C.
            where = _failure_place(e)  # a bad annotate swap: name the submodules
            outcome.error = describe_error(e) + (f" ({where})" if where else "")
            outcome.traceback = _format_traceback()
            out_of_memory = isinstance(e, torch.cuda.OutOfMemoryError)
        if interrupt.fired:  # Also when the evaluator caught the KeyboardInterrupt.
            raise KeyboardInterrupt
        if alarm.fired:  # Also when code caught the interruption and went on.
            outcome.status, outcome.reward, outcome.metrics = TrialStatus.FAILED, None, {}
            outcome.weights = None
            outcome.error = (
                f"TimeoutError: trial {task.trial_id} ran past its time limit of {timeout:g} s"
            )
        if out_of_memory and torch.cuda.is_initialized():
            torch.cuda.empty_cache()  # The failed child's tensors are gone with its frames.
        outcome.duration = time.perf_counter() - start
        return outcome

    def _argument(self, tokens: list[int], floats: dict[int, float]) -> Any:
        if self.input == "tokens":
            self.codec.validate(tokens)
            return list(tokens)
        if self.input == "dna":
            return self.codec.from_tokens(tokens, floats)
        return self.codec.materialize(tokens, floats)


def _deliver_nowhere(report: Report) -> bool:
    """The reporter of an evaluation no executor connected: never stop."""
    del report
    return False


def describe_error(error: BaseException) -> str:
    """``"ExceptionType: message"`` for any exception, even one whose ``str`` raises.

    Falls back to the type name and ``repr``, then to the type name alone; a
    message-less exception is its type name.

    Example:
        >>> describe_error(ValueError("bad width"))
        'ValueError: bad width'
        >>> describe_error(SystemExit())
        'SystemExit'
        >>> class Broken(Exception):
        ...     def __str__(self):
        ...         raise RuntimeError("no text")
        >>> describe_error(Broken(1))
        'Broken: Broken(1) (its str() raised RuntimeError)'
    """
    name = _type_name(error)
    try:
        text = str(error)
        return f"{name}: {text}" if text else name
    except BaseException as failure:  # str() of user code may raise anything
        reason = f"its str() raised {_type_name(failure)}"
    try:
        return f"{name}: {error!r} ({reason})"
    except BaseException:
        return f"{name} ({reason}, and so did its repr())"


def _type_name(value: object) -> str:
    try:
        return str(type(value).__qualname__)
    except BaseException:  # a metaclass may do anything
        return "Exception"


def _failure_place(error: BaseException) -> str | None:
    """:func:`~symbolic_nas.space.annotate.describe_failure`, or None if that fails too."""
    try:
        return describe_failure(error)
    except Exception:  # never let the description of an error become one
        return None


def _format_traceback() -> str | None:
    try:
        return traceback.format_exc()
    except BaseException:
        return None


class _UserInterrupt:
    """Tells the user's Ctrl-C apart from a ``KeyboardInterrupt`` raised by the evaluator.

    While the block runs, a ``SIGINT`` first sets ``fired``, then goes to the
    handler that was there before (Python's default one raises
    ``KeyboardInterrupt``). A ``KeyboardInterrupt`` without ``fired`` was raised
    by code, not by a signal. Only where that handler is Python code in the main
    thread (not in worker processes, which ignore ``SIGINT``).
    """

    def __init__(self) -> None:
        self.fired = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        self.fired = True
        if callable(self._previous):
            self._previous(signum, frame)

    def __enter__(self) -> _UserInterrupt:
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if callable(previous):
                self._previous = previous
                signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


def _keep_weights(outcome: Outcome, model: Any) -> None:
    """Puts ``model``'s state dict into ``outcome`` (or why it cannot be kept)."""
    try:
        outcome.weights = state_dict_bytes(model)
    except Exception as e:  # the trial itself succeeded; the driver warns
        outcome.weights_error = describe_error(e)


def _importing(frame: Any) -> bool:
    """Whether an import is running in ``frame`` or one of its callers."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


@contextlib.contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    """Seeds torch's CPU generator for the block and restores its state afterwards."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield


class _Alarm:
    """``SIGALRM`` after ``seconds`` raises :class:`TrialTimeout` in the block; ``fired``
    tells afterwards whether the limit passed (also when the block caught the
    exception, or ended before it could be raised).

    It never interrupts an import: torch imports many modules lazily, on first use,
    and a library that catches the interruption would keep a half-initialised
    module that fails every later trial. While an import is on the stack, raising is
    put off by :data:`_IMPORT_RETRY` seconds, up to :data:`_IMPORT_GRACE` in all.
    """

    def __init__(self, seconds: float | None):
        self.seconds = seconds
        self.fired = False
        self._previous: Any = None
        self._deferred = 0.0

    def _expire(self, signum: int, frame: Any) -> None:
        del signum
        self.fired = True
        if self._deferred < _IMPORT_GRACE and _importing(frame):
            self._deferred += _IMPORT_RETRY
            signal.setitimer(signal.ITIMER_REAL, _IMPORT_RETRY)
            return
        raise TrialTimeout()

    def __enter__(self) -> _Alarm:
        if self.seconds is None:
            return self
        if threading.current_thread() is not threading.main_thread() or not hasattr(
            signal, "setitimer"
        ):
            raise RuntimeError(
                "an inline per-trial time limit needs the main thread on a POSIX system; "
                "use executor='process' instead"
            )
        self._previous = signal.signal(signal.SIGALRM, self._expire)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.seconds is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous)
