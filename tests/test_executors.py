"""Tests for process workers: faults in children, time limits, worker deaths, pinning."""

from __future__ import annotations

import collections

import pytest
from torch import nn

import symbolic_nas as sn
from symbolic_nas.storage.journal import JournalStorage
from symbolic_nas.storage.records import EventKind, event_of
from symbolic_nas.storage.trial import TrialStatus
from symbolic_nas.tuner.executors.local import ProcessExecutor, WorkerError
from tests.helpers import tuner as h

SCRIPT = ("ok", "raise", "nan", "oom", "crash", "sleep", "ok", "ok", "ok", "ok")


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory):
    """One search on two pinned workers through every kind of fault (shared: workers are slow
    to start; ~11 s, so the tests that use it are marked slow)."""
    run_dir = tmp_path_factory.mktemp("faulty") / "run"
    markers = tmp_path_factory.mktemp("markers")
    result = sn.search(
        h.behaviour_space(),
        h.FaultyEvaluator(marker_dir=str(markers), sleep=60.0),
        algorithm=h.ScriptedAlgorithm(h.behaviour_tokens(*SCRIPT)),
        num_trials=len(SCRIPT),
        workers=2,
        gpus=["7", "9"],
        trial_timeout=4.0,
        max_retries=1,
        max_consecutive_failures=None,
        run_dir=run_dir,
        tensorboard=False,
        progress=False,
    )
    return result, JournalStorage(run_dir / "journal.jsonl").read()


def _by_behaviour(result):
    return {h.BEHAVIOURS[t.tokens[0]]: t for t in result.trials}


@pytest.mark.slow
def test_every_trial_finishes_exactly_once(faulty_run):
    result, records = faulty_run
    assert [t.id for t in result.trials] == list(range(len(SCRIPT)))
    ends = [r["trial"]["id"] for r in records if event_of(r) is EventKind.END]
    assert sorted(ends) == list(range(len(SCRIPT)))


@pytest.mark.slow
def test_faults_in_children_fail_only_their_trials(faulty_run):
    result, _ = faulty_run
    trials = _by_behaviour(result)
    assert trials["raise"].error.startswith("ValueError: injected failure")
    assert trials["nan"].error.startswith("NonFiniteLossError: training loss is nan")
    assert trials["oom"].error.startswith("OutOfMemoryError: CUDA out of memory")
    assert "Traceback" in trials["oom"].traceback
    assert all(
        t.status is TrialStatus.COMPLETED
        for t in result.trials
        if h.BEHAVIOURS[t.tokens[0]] == "ok"
    )


@pytest.mark.slow
def test_a_trial_past_its_time_limit_fails_and_its_worker_is_replaced(faulty_run):
    result, _ = faulty_run
    slow = _by_behaviour(result)["sleep"]
    assert slow.status is TrialStatus.FAILED
    assert slow.error.startswith("TimeoutError: trial 5 ran past its time limit of 4 s;")
    assert "was killed and replaced" in slow.error
    assert 3.5 < slow.duration < 30  # Cut off long before its 60 s sleep.


@pytest.mark.slow
def test_a_worker_killed_mid_trial_is_replaced_and_the_trial_retried(faulty_run):
    result, records = faulty_run
    crashed = _by_behaviour(result)["crash"]
    assert crashed.status is TrialStatus.COMPLETED and crashed.attempts == 2
    lost = [r for r in records if event_of(r) is EventKind.LOST]
    assert [r["trial"] for r in lost].count(crashed.id) == 1
    assert "exited with code -9 mid-trial" in lost[0]["error"]


@pytest.mark.slow
def test_workers_are_pinned_single_threaded_and_load_the_evaluator_once(faulty_run):
    result, _ = faulty_run
    completed = [t.metrics for t in result.completed]
    assert {m["threads"] for m in completed} == {1}
    assert {m["cuda_visible_devices"] for m in completed} <= {"7", "9"}
    calls = collections.defaultdict(list)
    for m in completed:
        calls[m["pid"]].append(m["calls_in_process"])
    assert max(len(c) for c in calls.values()) >= 2  # A worker ran several trials...
    assert all(
        c == sorted(c) and len(set(c)) == len(c) for c in calls.values()
    )  # ...on one evaluator.
    assert len({t.worker for t in result.trials}) >= 2


def test_an_evaluation_that_cannot_load_in_workers_stops_the_search():
    with pytest.raises(WorkerError, match="refuses to load in a worker"):
        h.search_unloadable("process")


def test_an_unpicklable_space_is_reported_with_advice():
    @sn.symbolize
    class Local(nn.Module):  # Defined in a function: workers cannot import it.
        def __init__(self, width: int):
            super().__init__()
            self.fc = nn.Linear(2, width)

    with pytest.raises(TypeError, match="must be picklable to be sent to workers"):
        sn.search(
            Local(sn.oneof([1, 2])), lambda m: 0.0, algorithm="random", num_trials=2, workers=2
        )


def test_process_executor_validates_its_arguments():
    with pytest.raises(ValueError, match="`workers` must be an int >= 1, but got 0"):
        ProcessExecutor(workers=0)
    with pytest.raises(ValueError, match="`threads` must be an int >= 1, but got 0"):
        ProcessExecutor(threads=0)


def test_symbolized_factories_of_published_classes_travel_to_workers():
    import cloudpickle

    from symbolic_nas.tuner.pickling import dumps

    linear = sn.symbolize(nn.Linear)
    space = {"fc": linear(4, sn.oneof([2, 3])), "act": sn.oneof(["relu", "gelu"])}
    for main_by_reference in (True, False):
        copy = cloudpickle.loads(dumps(space, main_by_reference=main_by_reference))
        built = sn.materialize(copy, [1, 0])
        assert isinstance(built["fc"], nn.Linear) and built["fc"].out_features == 3
