"""The Ray executor against a local Ray (one session for the module: it starts slowly)."""

from __future__ import annotations

import os
import pathlib

import pytest

import symbolic_nas as sn
from symbolic_nas.storage.trial import TrialStatus
from tests.helpers import tuner as h

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow  # a local Ray session (~5 s to start), searches of 10-18 s

SCRIPT = ("ok", "raise", "crash", "sleep", "ok", "ok", "ok", "ok")


@pytest.fixture(scope="module")
def ray_session():
    root = str(pathlib.Path(h.__file__).resolve().parents[2])  # tests.helpers.tuner
    pythonpath = os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": pythonpath}},
    )
    yield
    ray.shutdown()


def test_a_search_on_ray_actors_survives_faults(ray_session, tmp_path):
    result = sn.search(
        h.behaviour_space(),
        h.FaultyEvaluator(marker_dir=str(tmp_path), sleep=60.0),
        algorithm=h.ScriptedAlgorithm(h.behaviour_tokens(*SCRIPT)),
        num_trials=len(SCRIPT),
        executor="ray",
        workers=2,
        trial_timeout=4.0,
        max_consecutive_failures=None,
        run_dir=tmp_path / "run",
        tensorboard=False,
        progress=False,
    )
    assert [t.id for t in result.trials] == list(range(len(SCRIPT)))
    trials = {h.BEHAVIOURS[t.tokens[0]]: t for t in result.trials}
    assert trials["raise"].error.startswith("ValueError: injected failure")
    crashed = trials["crash"]
    assert crashed.status is TrialStatus.COMPLETED and crashed.attempts == 2  # Its actor died once.
    assert trials["sleep"].error.startswith("TimeoutError: trial 3 ran past its time limit of 4 s")
    completed = [t for t in result.trials if t.status is TrialStatus.COMPLETED]
    assert len(completed) == 6 and all(t.worker.startswith("ray-") for t in completed)
    assert {t.metrics["threads"] for t in completed} == {1}
    assert ray.is_initialized()  # A session the user started is left running.


def test_actors_that_cannot_load_the_evaluation_stop_the_search(ray_session):
    from symbolic_nas.tuner.executors.base import WorkerError

    with pytest.raises(WorkerError, match="Ray actors cannot load the evaluation"):
        h.search_unloadable("ray", num_trials=4, workers=2, max_consecutive_failures=None)
    assert ray.is_initialized()


def test_ray_actors_record_escaping_errors_and_survive_deaths_while_starting(ray_session, tmp_path):
    """sys.exit(), a KeyboardInterrupt raised by code and an exception whose str() raises
    fail their trials (the actor lives on); actors killed while loading the evaluation
    are replaced and their tasks handed on, so no trial counts an attempt."""
    markers = tmp_path / "markers"
    markers.mkdir()
    script = ("ok", "bad_str", "exit", "interrupt", "ok", "ok")
    result = sn.search(
        h.escape_space(),
        h.EscapingEvaluator(marker_dir=str(markers), start_deaths=2),
        algorithm=h.ScriptedAlgorithm(h.escape_tokens(*script)),
        num_trials=len(script),
        executor="ray",
        workers=2,
        max_consecutive_failures=None,
        run_dir=tmp_path / "run",
        tensorboard=False,
        progress=False,
    )
    assert len(list(markers.iterdir())) == 2
    assert [(t.id, t.attempts) for t in result.trials] == [(i, 1) for i in range(len(script))]
    errors = {h.ESCAPES[t.tokens[0]]: t.error for t in result.failed}
    assert errors == {
        "bad_str": "BadStr: BadStr(1) (its str() raised RuntimeError)",
        "exit": "SystemExit: 3",
        "interrupt": "KeyboardInterrupt",
    }
    assert len(result.completed) == 3


def test_reports_reach_the_driver_from_ray_actors_and_prune_as_inline(ray_session):
    from tests.helpers import pruning as hp

    def search(executor, workers):
        return sn.search(
            hp.curve_space(),
            hp.reporting_reward,
            algorithm="random",
            num_trials=12,
            executor=executor,
            workers=workers,
            seed=0,
            pruner=hp.asha(),
            progress=False,
        )

    inline, on_ray = search("inline", 1), search("ray", 1)
    assert on_ray.pruned
    assert all(t.worker.startswith("ray-") for t in on_ray.trials)
    # One actor runs the trials in order: the same decisions as inline.
    assert [(t.tokens, t.status, t.metrics) for t in on_ray.trials] == [
        (t.tokens, t.status, t.metrics) for t in inline.trials
    ]
