"""The Ray executor against a local Ray (one session for the module: it starts slowly)."""

from __future__ import annotations

import os
import pathlib
import socket
import sys

import pytest
from click.testing import CliRunner

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
    # Ray replaces 127.0.0.1 with the host's network address (and listens on every
    # interface) unless it thinks clusters are off: keep this test's Ray on loopback.
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": pythonpath}},
    )
    yield
    ray.shutdown()
    ray_constants.ENABLE_RAY_CLUSTER = True


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


def test_a_trial_that_asks_for_gpus_the_cluster_lacks_is_refused_before_any_starts(
    ray_session, tmp_path
):
    with pytest.raises(ValueError, match=r"`gpus_per_trial` must fit on one node .* 0 GPU"):
        sn.search(
            h.small_space(),
            h.token_reward,
            num_trials=2,
            executor="ray",
            workers=1,
            gpus_per_trial=1,
            run_dir=tmp_path / "run",
            tensorboard=False,
            progress=False,
        )
    journal = (tmp_path / "run" / "journal.jsonl").read_text()
    assert '"start"' not in journal


def test_a_module_the_nodes_cannot_import_is_named(ray_session, tmp_path, monkeypatch):
    """The evaluator lives in a module that only the driver has (it is gone from disk, as
    if it were on the driver's machine alone): the error names it and points at runtime_env."""
    from symbolic_nas.tuner.executors.base import WorkerError

    (tmp_path / "sn_driver_only.py").write_text(
        "import symbolic_nas as sn\n\n@sn.evaluator(input='tokens')\n"
        "def score(tokens):\n    return float(sum(tokens))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import sn_driver_only  # type: ignore[import-not-found]

    (tmp_path / "sn_driver_only.py").unlink()
    try:
        with pytest.raises(
            WorkerError, match=r"the module 'sn_driver_only' cannot be imported.*runtime_env"
        ):
            sn.search(
                h.small_space(),
                sn_driver_only.score,
                num_trials=2,
                executor="ray",
                workers=1,
                tensorboard=False,
                progress=False,
            )
    finally:
        sys.modules.pop("sn_driver_only", None)


def test_actors_the_cluster_cannot_place_are_given_up_and_the_search_ends(ray_session):
    """Three actors on two CPUs: the third is given up after its placement timeout, with a
    warning; the task it held runs on a live actor, and the search returns."""
    from symbolic_nas.tuner.executors.ray_actors import RayExecutor

    executor = RayExecutor(workers=3, placement_timeout=5.0)
    with pytest.warns(RuntimeWarning, match=r"could not be placed on the Ray cluster within 5 s"):
        result = sn.search(
            h.wide_space(),
            h.slow_token_reward,
            algorithm="random",
            num_trials=8,
            executor=executor,
            tensorboard=False,
            progress=False,
        )
    assert len(result.completed) == 8 and {t.attempts for t in result.trials} == {1}
    assert executor.slots == 2


def test_an_address_where_no_cluster_answers_says_which_and_how_long():
    from symbolic_nas import cli
    from symbolic_nas.tuner.executors.ray_actors import connect

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # Bound, never listening: connections are refused.
        with pytest.raises(
            ConnectionError,
            match=rf"no Ray cluster answers at '127.0.0.1:{port}'"
            r": nothing accepted a connection there in 1\.\d s",
        ):
            connect(f"127.0.0.1:{port}", timeout=1.0)
        with pytest.raises(ValueError, match="`address` must be HOST:PORT"):
            connect("ray://head:10001")
        out = CliRunner().invoke(
            cli.cli, ["search", "x:y", "--ray-address", "nohost", "--num-trials", "1"]
        )
    assert out.exit_code == 2 and "`address` must be HOST:PORT" in out.output
