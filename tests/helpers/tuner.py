"""Importable helpers for the tuner, executor, run-directory, CLI, fault and Ray tests.

Worker processes unpickle evaluators by reference, so they live in this module
(``tests.helpers.tuner``, importable from the repository root). Run as a module, it is
the driver of the driver-SIGKILL test: ``python -m tests.helpers.tuner RUN_DIR NUM_TRIALS
WORKERS [ALGORITHM [tensorboard]]``.
"""

from __future__ import annotations

import os
import pathlib
import signal
import sys
import time
from typing import Any

import torch
from torch import nn

import symbolic_nas as sn
from symbolic_nas.algorithms.base import Algorithm
from symbolic_nas.algorithms.random_search import RandomSearch
from symbolic_nas.storage.trial import SearchResult, Trial, TrialStatus
from symbolic_nas.training import Trainer
from symbolic_nas.tuner.callbacks import Callback, SearchContext
from symbolic_nas.tuner.evaluation import Outcome
from symbolic_nas.tuner.executors.local import InlineExecutor


def small_space() -> dict[str, Any]:
    """Nine architectures: a width and a depth."""
    return {"width": sn.oneof([8, 16, 32]), "depth": sn.intv(1, 3)}


def small_reward(arch: dict[str, Any]) -> float:
    """A deterministic reward of a ``small_space`` architecture (best: width 32, depth 1)."""
    return arch["width"] / (1 + arch["depth"])


@sn.evaluator(input="tokens")
def token_reward(tokens: list[int]) -> dict[str, Any]:
    """A deterministic reward from the tokens alone (no model is ever built)."""
    return {"reward": float(sum((i + 1) * t for i, t in enumerate(tokens))), "length": len(tokens)}


@sn.evaluator(input="tokens")
def slow_token_reward(tokens: list[int]) -> float:
    """Like ``token_reward`` but takes 50 ms (the driver-kill test needs time to kill)."""
    time.sleep(0.05)
    return float(sum((i + 1) * t for i, t in enumerate(tokens)))


def wide_space() -> dict[str, Any]:
    """A space of 4^6 architectures (random proposals rarely repeat)."""
    return {f"d{i}": sn.oneof([0, 1, 2, 3]) for i in range(6)}


# ---------------------------------------------------------------------- faults

BEHAVIOURS = ("ok", "raise", "nan", "oom", "sleep", "crash")


def behaviour_space() -> dict[str, Any]:
    """Each architecture names what its evaluation does (see :class:`FaultyEvaluator`)."""
    return {"behaviour": sn.oneof(list(BEHAVIOURS)), "x": sn.intv(0, 9)}


def behaviour_tokens(*behaviours: str, x: int = 0) -> list[list[int]]:
    return [[BEHAVIOURS.index(b), (x + i) % 10] for i, b in enumerate(behaviours)]


def tiny_data() -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    x = torch.linspace(-1, 1, 32).reshape(8, 4)
    y = torch.arange(8) % 2
    return (x, y), (x, y)


class NanModel(nn.Module):
    """A model whose logits are NaN (its training loss is NaN)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) * float("nan")


class FaultyEvaluator:
    """Does what the architecture's ``behaviour`` says.

    ``ok``: reward ``x / 10`` with metrics about the worker; ``raise``: ValueError;
    ``nan``: a real ``sn.Trainer`` run of a NaN model (NonFiniteLossError); ``oom``: a
    simulated ``torch.cuda.OutOfMemoryError``; ``sleep``: sleeps ``sleep`` seconds;
    ``crash``: the process SIGKILLs itself the first time it meets that ``x``
    (recorded in ``marker_dir``), then behaves like ``ok``.
    """

    def __init__(self, marker_dir: str | None = None, sleep: float = 60.0) -> None:
        self.marker_dir = marker_dir
        self.sleep = sleep
        self.calls = 0
        self.trainer = Trainer(data=tiny_data, epochs=1, batch_size=4)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Loading in a worker warms the trainer up: a process's first optimizer step pays
        seconds of lazy imports, which would count against the trials' time limit."""
        self.__dict__.update(state)
        self.trainer(nn.Linear(4, 2))

    def __call__(self, arch: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        behaviour, x = arch["behaviour"], arch["x"]
        if behaviour == "raise":
            raise ValueError(f"injected failure for x={x}")
        if behaviour == "nan":
            self.trainer(NanModel())
        if behaviour == "oom":
            raise torch.cuda.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 1 GiB (simulated)"
            )
        if behaviour == "sleep":
            time.sleep(self.sleep)
        if behaviour == "crash" and self.marker_dir is not None:
            marker = pathlib.Path(self.marker_dir) / f"crashed-{x}"
            if not marker.exists():
                marker.touch()
                os.kill(os.getpid(), signal.SIGKILL)
        return {
            "reward": x / 10,
            "pid": os.getpid(),
            "threads": torch.get_num_threads(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "calls_in_process": self.calls,
        }


# ------------------------------------------------------- evaluator errors that escape

ESCAPES = ("ok", "bad_str", "bad_repr", "exit", "interrupt", "caught_sigint", "sigint")


class BadStr(Exception):
    """An exception whose ``str`` raises."""

    def __str__(self) -> str:
        raise RuntimeError("no text for you")


class BadStrAndRepr(BadStr):
    """An exception whose ``str`` and ``repr`` both raise."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr either")


def escape_space() -> dict[str, Any]:
    """Each architecture names how its evaluation ends (see :class:`EscapingEvaluator`)."""
    return {"how": sn.oneof(list(ESCAPES)), "x": sn.intv(0, 9)}


def escape_tokens(*hows: str) -> list[list[int]]:
    return [[ESCAPES.index(how), i % 10] for i, how in enumerate(hows)]


class EscapingEvaluator:
    """Ends each trial as the architecture's ``how`` says.

    ``ok``: reward ``x / 10``; ``bad_str`` / ``bad_repr``: raises :class:`BadStr` /
    :class:`BadStrAndRepr`; ``exit``: ``sys.exit(3)``; ``interrupt``: raises
    ``KeyboardInterrupt`` itself; ``caught_sigint``: sends itself SIGINT (as a Ctrl-C
    would), catches the ``KeyboardInterrupt`` and returns; ``sigint``: sends itself
    SIGINT and sleeps. With ``start_deaths``, loading it in worker ``i`` (a process
    pinned to "GPU" ``i``, or any Ray actor) SIGKILLs that process the first
    ``start_deaths`` times (counted with files in ``marker_dir``).
    """

    def __init__(self, marker_dir: str | None = None, start_deaths: int = 0) -> None:
        self.marker_dir = marker_dir
        self.start_deaths = start_deaths

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        worker = os.environ.get("CUDA_VISIBLE_DEVICES", "any") or "any"
        for i in range(self.start_deaths):
            marker = pathlib.Path(self.marker_dir or ".") / f"start-{worker}-{i}"
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                continue
            os.kill(os.getpid(), signal.SIGKILL)

    def __call__(self, arch: dict[str, Any]) -> float:
        how = arch["how"]
        if how == "bad_str":
            raise BadStr(arch["x"])
        if how == "bad_repr":
            raise BadStrAndRepr(arch["x"])
        if how == "exit":
            sys.exit(3)
        if how == "interrupt":
            raise KeyboardInterrupt
        if how == "caught_sigint":
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)
            except KeyboardInterrupt:
                pass
        if how == "sigint":
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        return arch["x"] / 10


class ExplodingEvaluation:
    """Stands in for an :class:`Evaluation` whose ``run`` lets an exception escape: the
    worker process must tell the driver why before it dies."""

    worker = "?"

    def run(self, task: Any) -> Outcome:
        raise SystemExit(7)


def ranged_space(high: int = 3) -> dict[str, Any]:
    """A space factory that rejects ``high < 1`` (through ``sn.intv``)."""
    return {"n": sn.intv(1, high)}


class UnloadableEvaluator:
    """Pickles fine but cannot be unpickled (its worker fails to load it)."""

    def __init__(self) -> None:
        self.state = "unloadable"

    def __call__(self, model: Any) -> float:
        return 0.0

    def __setstate__(self, state: dict[str, Any]) -> None:
        raise RuntimeError("this evaluator refuses to load in a worker")


def search_unloadable(executor: str, num_trials: int = 2, **options: Any) -> SearchResult:
    """A random search of ``small_space`` with :class:`UnloadableEvaluator` on ``executor``."""
    return sn.search(
        small_space(),
        UnloadableEvaluator(),
        algorithm="random",
        num_trials=num_trials,
        executor=executor,
        progress=False,
        **options,
    )


class ScriptedAlgorithm(Algorithm):
    """Proposes the given token sequences in order, cycling (not registered)."""

    name = "scripted"
    learns = False

    def __init__(self, script: list[list[int]], *, seed: int | None = 0) -> None:
        super().__init__(seed=seed)
        self.script = [list(tokens) for tokens in script]

    def _propose(self) -> tuple[list[int], dict[str, Any] | None]:
        return self.script[self.num_proposed % len(self.script)], None


class RecordingRandom(RandomSearch):
    """Random search that records the feedback it gets (None for "failed")."""

    def __init__(self, *, seed: int | None = 0) -> None:
        super().__init__(seed=seed)
        self.received: list[tuple[int, float | None]] = []

    def _feedback(self, proposal: Any, reward: float) -> None:
        self.received.append((proposal.id, reward))

    def _failed(self, proposal: Any) -> None:
        self.received.append((proposal.id, None))


class LosingExecutor(InlineExecutor):
    """Inline, but the first ``losses`` attempts of trials whose first token is 0 are
    "lost", as if their worker process had died."""

    def __init__(self, losses: int) -> None:
        super().__init__()
        self.losses = losses
        self.lost: dict[int, int] = {}

    def wait(self, timeout: float | None) -> list[Outcome]:
        task = self._task
        if (
            task is not None
            and task.tokens[0] == 0
            and self.lost.get(task.trial_id, 0) < self.losses
        ):
            self._task = None
            self.lost[task.trial_id] = self.lost.get(task.trial_id, 0) + 1
            return [Outcome(task.trial_id, TrialStatus.LOST, error="WorkerDied: simulated death")]
        return super().wait(timeout)


class RecordingCallback(Callback):
    """Records every hook call as ``(hook, trial id or None)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int | None]] = []

    def on_search_start(self, context: SearchContext) -> None:
        self.calls.append(("on_search_start", len(context.trials)))

    def on_trial_start(self, trial: Trial, context: SearchContext) -> None:
        self.calls.append(("on_trial_start", trial.id))

    def on_trial_end(self, trial: Trial, context: SearchContext) -> None:
        self.calls.append(("on_trial_end", trial.id))

    def on_search_end(self, result: SearchResult, context: SearchContext) -> None:
        self.calls.append(("on_search_end", len(result.trials)))


class InterruptAt(Callback):
    """Raises KeyboardInterrupt after ``count`` trials ended (a simulated Ctrl-C)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.seen = 0

    def on_trial_end(self, trial: Trial, context: SearchContext) -> None:
        self.seen += 1
        if self.seen == self.count:
            raise KeyboardInterrupt


def run_driver(
    run_dir: str,
    num_trials: int,
    workers: int,
    algorithm: str = "random",
    tensorboard: bool = False,
) -> None:
    """The driver of the driver-SIGKILL tests (resumes whatever is in ``run_dir``)."""
    sn.search(
        wide_space(),
        slow_token_reward,
        algorithm=algorithm,
        num_trials=num_trials,
        workers=workers,
        run_dir=run_dir,
        resume=True,
        seed=0,
        tensorboard=tensorboard,
        progress=False,
        checkpoint_interval=0.1,
    )


if __name__ == "__main__":
    # Imported by name, so workers unpickle the evaluator from tests.helpers.tuner.
    from tests.helpers.tuner import run_driver as run_driver_by_name

    algorithm = sys.argv[4] if len(sys.argv) > 4 else "random"
    tensorboard = sys.argv[5:6] == ["tensorboard"]
    run_driver_by_name(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), algorithm, tensorboard)
