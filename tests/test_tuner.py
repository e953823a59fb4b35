"""Tests for sn.search with the inline executor: results, evaluation, failures, callbacks."""

from __future__ import annotations

import inspect
import math
import re
import sys
import time

import pyglove as pg
import pytest
import torch
from torch import nn

import symbolic_nas as sn
from symbolic_nas import algorithms
from symbolic_nas.storage.trial import TrialStatus
from symbolic_nas.tuner.loop import TooManyFailuresError, trial_seed
from tests.helpers import tuner as h


def _search(space=None, evaluate=h.small_reward, **kwargs):
    kwargs = {"algorithm": "random", "num_trials": 12, "seed": 0, "progress": False, **kwargs}
    return sn.search(h.small_space() if space is None else space, evaluate, **kwargs)


def test_search_returns_every_trial_and_the_best():
    result = _search(num_trials=15)
    assert [t.id for t in result.trials] == list(range(15))
    assert all(t.status == TrialStatus.COMPLETED and t.error is None for t in result.trials)
    assert all(
        t.reward == h.small_reward(sn.materialize(h.small_space(), t.tokens)) for t in result.trials
    )
    best = max(result.trials, key=lambda t: (t.reward, -t.id))
    assert result.best is not None and result.best.id == best.id
    assert isinstance(result.best.dna, pg.DNA)
    assert sn.materialize(h.small_space(), result.best.dna) == {"width": 32, "depth": 1}
    assert result.algorithm == "random" and result.run_dir is None


def test_same_seed_same_search_and_other_seed_other_search():
    first, second, other = _search(seed=3), _search(seed=3), _search(seed=4)
    assert [t.tokens for t in first.trials] == [t.tokens for t in second.trials]
    assert [t.tokens for t in first.trials] != [t.tokens for t in other.trials]


def test_default_algorithm_is_reinforce():
    assert inspect.signature(sn.search).parameters["algorithm"].default == "reinforce"
    if "reinforce" not in algorithms.available():
        with pytest.raises(ValueError, match="`algorithm` must be one of"):
            sn.search(h.small_space(), h.small_reward, num_trials=1, progress=False)
    else:
        result = sn.search(h.small_space(), h.small_reward, num_trials=3, progress=False)
        assert result.algorithm == "reinforce" and len(result.completed) == 3


def test_an_algorithm_instance_is_used_as_given():
    algorithm = h.RecordingRandom(seed=1)
    result = _search(algorithm=algorithm, num_trials=5)
    assert [i for i, _ in algorithm.received] == [t.id for t in result.trials]
    assert [r for _, r in algorithm.received] == [t.reward for t in result.trials]


def test_evaluate_may_return_a_float_or_a_dict_of_metrics():
    floats = _search(evaluate=lambda arch: arch["width"] * 0.5, num_trials=3)
    assert all(
        t.metrics == {} and t.reward == t.metrics.get("reward", t.reward) for t in floats.trials
    )
    dicts = _search(evaluate=lambda arch: {"reward": 1, "accuracy": 0.5, "curve": [1, 2]})
    assert dicts.best.reward == 1.0 and dicts.best.metrics == {
        "reward": 1.0,
        "accuracy": 0.5,
        "curve": [1, 2],
    }
    numpy_and_tensor = _search(evaluate=lambda arch: torch.tensor(0.25), num_trials=2)
    assert numpy_and_tensor.best.reward == 0.25


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("high", "TypeError: `evaluate` must return a float or a dict with a 'reward' key"),
        (
            {"accuracy": 1.0},
            "TypeError: `evaluate` must return a float or a dict with a 'reward' key",
        ),
        (float("nan"), "ValueError: `evaluate` must return a finite reward, but got nan"),
        (
            {"reward": 1.0, "model": nn.Linear(1, 1)},
            "TypeError: `evaluate` must return JSON-able metrics",
        ),
        (True, "TypeError: `evaluate` must return a float"),
    ],
)
def test_a_bad_return_value_fails_the_trial_with_a_clear_error(value, error):
    result = _search(evaluate=lambda arch: value, num_trials=2, max_consecutive_failures=None)
    assert [t.status for t in result.trials] == [TrialStatus.FAILED, TrialStatus.FAILED]
    assert result.trials[0].error.startswith(error), result.trials[0].error
    assert result.trials[0].reward is None and result.best is None


def test_failures_are_recorded_and_the_search_goes_on():
    evaluator = h.FaultyEvaluator()
    script = h.behaviour_tokens("ok", "raise", "nan", "oom", "ok", x=1)
    algorithm = h.ScriptedAlgorithm(script)
    result = sn.search(
        h.behaviour_space(), evaluator, algorithm=algorithm, num_trials=5, progress=False
    )
    statuses = [(t.status, (t.error or "").split(":")[0]) for t in result.trials]
    assert statuses == [
        (TrialStatus.COMPLETED, ""),
        (TrialStatus.FAILED, "ValueError"),
        (TrialStatus.FAILED, "NonFiniteLossError"),
        (TrialStatus.FAILED, "OutOfMemoryError"),
        (TrialStatus.COMPLETED, ""),
    ]
    assert "training loss is nan" in result.trials[2].error
    assert (
        "Traceback" in result.trials[1].traceback
        and "injected failure" in result.trials[1].traceback
    )
    assert result.best.id == 4 and len(result.failed) == 3
    assert algorithm.num_failed == 3 and algorithm.num_feedback == 5


@pytest.mark.parametrize("failure_reward", [None, -1.0])
def test_failed_trials_give_the_algorithm_the_documented_feedback(failure_reward):
    algorithm = h.RecordingRandom(seed=0)
    result = sn.search(
        h.small_space(),
        lambda arch: 1.0 if arch["depth"] == 1 else 1 / 0,
        algorithm=algorithm,
        num_trials=10,
        failure_reward=failure_reward,
        max_consecutive_failures=None,
        progress=False,
    )
    expected = [
        (t.id, t.reward if t.status == TrialStatus.COMPLETED else failure_reward)
        for t in result.trials
    ]
    assert algorithm.received == expected
    assert any(r == failure_reward for _, r in algorithm.received)
    assert all(t.reward is None for t in result.failed)


def test_too_many_consecutive_failures_stop_with_a_clear_error(tmp_path):
    def always_fails(arch):
        raise RuntimeError(f"broken child {arch['width']}")

    with pytest.raises(TooManyFailuresError) as info:
        _search(evaluate=always_fails, num_trials=20, max_consecutive_failures=4)
    message = str(info.value)
    assert "4 trials failed in a row (max_consecutive_failures=4)" in message
    assert message.count("RuntimeError: broken child") == 3  # The last three errors.
    assert "resume=True" not in message and "give run_dir to be able to resume" in message
    with pytest.raises(TooManyFailuresError, match=r"continue with resume=True"):
        _search(
            evaluate=always_fails,
            num_trials=20,
            max_consecutive_failures=4,
            run_dir=str(tmp_path / "run"),
            tensorboard=False,
        )


def test_a_success_resets_the_consecutive_failure_count():
    script = h.behaviour_tokens("raise", "raise", "ok", "raise", "raise", "ok")
    result = sn.search(
        h.behaviour_space(),
        h.FaultyEvaluator(),
        algorithm=h.ScriptedAlgorithm(script),
        num_trials=6,
        max_consecutive_failures=3,
        progress=False,
    )
    assert len(result.failed) == 4


@pytest.mark.parametrize(("losses", "max_retries"), [(1, 1), (2, 2), (5, 2)])
def test_a_lost_trial_is_run_again_up_to_max_retries(losses, max_retries):
    executor = h.LosingExecutor(losses)
    result = _search(executor=executor, max_retries=max_retries, num_trials=9)
    assert [t.id for t in result.trials] == list(range(9))
    unlucky = [t for t in result.trials if t.tokens[0] == 0]
    assert unlucky and all(executor.lost[t.id] == min(losses, max_retries + 1) for t in unlucky)
    for trial in unlucky:
        if losses <= max_retries:
            assert trial.status is TrialStatus.COMPLETED and trial.attempts == losses + 1
        else:
            assert trial.status is TrialStatus.FAILED and trial.attempts == max_retries + 1
            assert trial.error == "WorkerDied: simulated death (attempt 3 of 3)"


def test_inline_time_limit_fails_a_slow_trial_and_goes_on():
    evaluator = h.FaultyEvaluator(sleep=30.0)
    script = h.behaviour_tokens("sleep", "ok")
    start = time.perf_counter()
    result = sn.search(
        h.behaviour_space(),
        evaluator,
        algorithm=h.ScriptedAlgorithm(script),
        num_trials=2,
        trial_timeout=0.3,
        progress=False,
    )
    assert time.perf_counter() - start < 10
    slow, fast = result.trials
    assert slow.status is TrialStatus.FAILED
    assert slow.error.startswith("TimeoutError: trial 0 ran past")
    assert 0.25 < slow.duration < 5
    assert fast.status is TrialStatus.COMPLETED


def test_a_time_limit_inside_an_import_does_not_poison_later_trials(tmp_path, monkeypatch):
    # A package that guards an import with a broad except (as real ones do). Had the
    # time limit interrupted the slow first import of its submodule, the package would
    # swallow the interruption and stay without the submodule, failing every later
    # trial; the limit waits for imports to finish instead (the trial still fails).
    package = tmp_path / "slowpkg_for_timeout"
    package.mkdir()
    (package / "__init__.py").write_text(
        "try:\n    from . import sub\nexcept BaseException:\n    pass\n"
    )
    marker = tmp_path / "imported-once"
    (package / "sub.py").write_text(
        "import pathlib, time\n"
        f"marker = pathlib.Path({str(marker)!r})\n"
        "if not marker.exists():\n"
        "    marker.write_text('')\n"
        "    time.sleep(1.5)\n"
        "VALUE = 1.0\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    @sn.evaluator(input="tokens")
    def uses_the_package(tokens):
        import slowpkg_for_timeout

        return slowpkg_for_timeout.sub.VALUE

    try:
        result = sn.search(
            {"k": sn.oneof([1, 2, 3])},
            uses_the_package,
            algorithm="random",
            num_trials=3,
            trial_timeout=0.5,
            progress=False,
        )
    finally:
        for name in ("slowpkg_for_timeout", "slowpkg_for_timeout.sub"):
            sys.modules.pop(name, None)
    first, *later = result.trials
    assert first.status is TrialStatus.FAILED
    assert first.error.startswith("TimeoutError: trial 0 ran past")
    assert first.duration >= 1.5  # the import ran to its end
    assert [t.status for t in later] == [TrialStatus.COMPLETED] * 2, [t.error for t in later]


def test_a_tokens_evaluator_never_builds_a_model():
    seen = []

    @sn.evaluator(input="tokens")
    def score(tokens):
        seen.append(tokens)
        return float(len(tokens))

    class Unbuildable(nn.Module):
        def __init__(self, width: int):
            raise AssertionError("must not be built")

    space = sn.symbolize(Unbuildable)(sn.oneof([1, 2]))
    result = sn.search(space, score, algorithm="random", num_trials=3, progress=False)
    assert len(result.completed) == 3 and all(isinstance(t, list) for t in seen)


def test_a_dna_evaluator_gets_a_dna():
    @sn.evaluator(input="dna")
    def score(dna):
        assert isinstance(dna, pg.DNA)
        return float(dna.to_numbers()[0])

    result = _search(evaluate=score, num_trials=4)
    assert len(result.completed) == 4


def test_trials_are_seeded_by_the_search_seed_and_leave_global_rng_alone():
    space = sn.symbolize(nn.Linear)(4, sn.oneof([2, 3]))

    def weight_sum(model):
        return float(model.weight.detach().sum())

    before = torch.random.get_rng_state()
    first = _search(space, weight_sum, num_trials=4, seed=5)
    again = _search(space, weight_sum, num_trials=4, seed=5)
    assert torch.equal(before, torch.random.get_rng_state())
    assert [t.reward for t in first.trials] == [t.reward for t in again.trials]
    with torch.random.fork_rng():
        torch.manual_seed(trial_seed(5, 2))
        expected = float(sn.materialize(space, first.trials[2].tokens).weight.detach().sum())
    assert math.isclose(first.trials[2].reward, expected)


def test_callbacks_see_every_event_in_order():
    recorder = h.RecordingCallback()
    _search(num_trials=3, callbacks=[recorder])
    assert recorder.calls == [
        ("on_search_start", 0),
        ("on_trial_start", 0),
        ("on_trial_end", 0),
        ("on_trial_start", 1),
        ("on_trial_end", 1),
        ("on_trial_start", 2),
        ("on_trial_end", 2),
        ("on_search_end", 3),
    ]


def test_a_raising_callback_is_reported_and_disabled():
    class Broken(sn.tuner.Callback):
        calls = 0

        def on_trial_end(self, trial, context):
            Broken.calls += 1
            raise OSError("disk full")

    recorder = h.RecordingCallback()
    with pytest.warns(
        RuntimeWarning, match="callback Broken raised in on_trial_end: OSError: disk full"
    ):
        result = _search(num_trials=4, callbacks=[Broken(), recorder])
    assert Broken.calls == 1
    assert len(result.trials) == 4 and [c for c in recorder.calls if c[0] == "on_trial_end"] == [
        ("on_trial_end", i) for i in range(4)
    ]


def test_progress_bar_and_tensorboard_are_wired_in(tmp_path, capsys):
    run_dir = tmp_path / "run"
    _search(num_trials=3, run_dir=run_dir, progress=True)
    assert any((run_dir / "tensorboard").iterdir())
    assert "3/3" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_trials": 0}, "`num_trials` must be an int >= 1, but got 0"),
        ({"workers": 0}, "`workers` must be 'auto' or an int >= 1, but got 0"),
        ({"executor": "threads"}, "`executor` must be one of"),
        ({"algorithm": 3}, "`algorithm` must be a registered name or an Algorithm instance"),
        ({"algorithm": "nope"}, "`algorithm` must be one of"),
        ({"failure_reward": float("nan")}, "`failure_reward` must be None or a finite number"),
        ({"trial_timeout": 0}, "`trial_timeout` must be None or a number > 0, but got 0"),
        ({"max_consecutive_failures": 0}, "`max_consecutive_failures` must be None or an int >= 1"),
        ({"max_retries": -1}, "`max_retries` must be an int >= 0"),
        ({"seed": "0"}, "`seed` must be None or an int >= 0"),
        ({"callbacks": [object()]}, "`callbacks` must be a sequence of Callback objects"),
        ({"callbacks": None}, "`callbacks` must be a sequence of Callback objects, but got None"),
        (
            {"metadata": {"note": "ok", "cli": {"tags": {"a", "b"}}}},
            "`metadata` must be JSON-able (it is stored in the run's config), but "
            "`metadata['cli']['tags']` is a set",
        ),
        ({"metadata": {"loss": float("nan")}}, "`metadata['loss']` is nan, not a finite float"),
        ({"resume": 1}, "`resume` must be a bool, but got 1"),
        ({"checkpoint_interval": -1}, "`checkpoint_interval` must be a number >= 0"),
        ({"gpus": "0"}, "`gpus` must be a list of GPU ids or None"),
        ({"workers": 2, "executor": "inline"}, "`workers` must be 1 with executor='inline'"),
    ],
)
def test_bad_arguments_are_rejected_with_the_rule(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        _search(**kwargs)


def test_evaluate_must_be_callable():
    with pytest.raises(ValueError, match="`evaluate` must be callable, but got 3"):
        sn.search(h.small_space(), 3, algorithm="random", num_trials=1)


def test_an_inline_time_limit_off_the_main_thread_is_refused():
    import threading

    errors = []

    def search_in_thread():
        try:
            _search(trial_timeout=1.0, num_trials=2)
        except ValueError as e:
            errors.append(str(e))

    thread = threading.Thread(target=search_in_thread)
    thread.start()
    thread.join()
    assert errors and "needs the main thread" in errors[0] and "executor='process'" in errors[0]
