"""Fault injection: the driver SIGKILLed at random points and resumed, several times."""

from __future__ import annotations

import functools
import json
import os
import pathlib
import random
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

import symbolic_nas as sn
from symbolic_nas.storage.journal import JournalStorage
from symbolic_nas.storage.records import EventKind, event_of
from symbolic_nas.storage.rundir import ResumeError, RunInUseError
from symbolic_nas.tuner import EvaluatorChangedWarning
from tests.helpers import tuner as h

ROOT = pathlib.Path(__file__).resolve().parents[1]
NUM_TRIALS = 60


def _records(run_dir: pathlib.Path) -> list[dict]:
    path = run_dir / "journal.jsonl"
    return JournalStorage(path).read() if path.exists() else []


def _ends(records: list[dict]) -> list[dict]:
    return [r["trial"] for r in records if event_of(r) is EventKind.END]


def _alive(pid: int) -> bool:
    try:
        status = pathlib.Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # A zombie has exited.


def _kill_driver_mid_run(
    run_dir: pathlib.Path,
    workers: int,
    rng: random.Random,
    *extra: str,
    driver: str = h.__name__,
    num_trials: int = NUM_TRIALS,
) -> set[int]:
    """Starts the driver, lets it finish a few more trials, SIGKILLs it; returns worker pids.

    ``extra``: the driver's algorithm name, then ``"tensorboard"`` to log to TensorBoard.
    ``driver``: the driver's module (``python -m driver RUN_DIR NUM_TRIALS WORKERS ...``).
    """
    before = len(_ends(_records(run_dir)))
    process = subprocess.Popen(
        [sys.executable, "-m", driver, str(run_dir), str(num_trials), str(workers), *extra],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while len(_ends(_records(run_dir))) < before + 3:
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "the driver made no progress"
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 0.3))
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    session_starts = [r for r in _records(run_dir) if event_of(r) is EventKind.START]
    return {int(m) for r in session_starts for m in re.findall(r"pid (\d+)", r["worker"])}


def _assert_same_as_uninterrupted(ends: dict[int, dict], algorithm: str, evaluate) -> None:
    """The finished trials (by id) are those of one uninterrupted inline search."""
    reference = sn.search(
        h.wide_space(),
        evaluate,
        algorithm=algorithm,
        num_trials=NUM_TRIALS,
        seed=0,
        progress=False,
    )
    assert [(t.tokens, t.reward) for t in reference.trials] == [
        (ends[i]["tokens"], ends[i]["reward"]) for i in range(NUM_TRIALS)
    ]


@pytest.mark.slow  # SIGKILLs and resumes a driver several times: 13-18 s
def test_driver_sigkilled_at_random_points_loses_and_repeats_nothing(tmp_path):
    run_dir = tmp_path / "run"
    rng = random.Random(20261122)
    first_seen: dict[int, dict] = {}
    for workers in (2, 1, 1, 1):
        worker_pids = _kill_driver_mid_run(run_dir, workers, rng)
        ends = _ends(_records(run_dir))
        assert len(ends) == len({e["id"] for e in ends}), "a finished trial was run twice"
        for end in ends:
            assert first_seen.setdefault(end["id"], end) == end, "a finished trial changed"
        assert len(ends) < NUM_TRIALS
        if workers > 1:  # Orphaned workers notice the driver's death and exit.
            deadline = time.monotonic() + 30
            while any(_alive(pid) for pid in worker_pids) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not any(_alive(pid) for pid in worker_pids)

    h.run_driver(str(run_dir), NUM_TRIALS, 1)
    records = _records(run_dir)
    ends = _ends(records)
    assert sorted(e["id"] for e in ends) == list(range(NUM_TRIALS))
    assert all(first_seen[i] == e for e in ends if (i := e["id"]) in first_seen)
    assert sum(event_of(r) is EventKind.RUN for r in records) == 5
    rerun = [e for e in ends if e["attempts"] > 1]
    assert rerun, "no kill landed mid-trial"

    _assert_same_as_uninterrupted({e["id"]: e for e in ends}, "random", h.token_reward)


@pytest.mark.slow  # SIGKILLs and resumes a driver several times: 13-18 s
def test_a_sigkilled_reinforce_run_resumes_exactly_with_tensorboard(tmp_path):
    """Inline, feedback comes in proposal order: the resumed run must be the very run an
    uninterrupted search makes (the controller restored exactly), logged once per trial."""
    run_dir = tmp_path / "run"
    rng = random.Random(7)
    for _ in range(3):
        _kill_driver_mid_run(run_dir, 1, rng, "reinforce", "tensorboard")
        ends = _ends(_records(run_dir))
        assert len(ends) == len({e["id"] for e in ends}) < NUM_TRIALS
    h.run_driver(str(run_dir), NUM_TRIALS, 1, "reinforce", True)
    ends = {e["id"]: e for e in _ends(_records(run_dir))}
    assert sorted(ends) == list(range(NUM_TRIALS))
    _assert_same_as_uninterrupted(ends, "reinforce", h.slow_token_reward)
    trial_runs = sorted(p.name for p in (run_dir / "tensorboard" / "trials").iterdir())
    assert trial_runs == [f"{i:05d}" for i in range(NUM_TRIALS)]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    main = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    main.Reload()
    steps = [e.step for e in main.Scalars("search/reward")]
    assert len(steps) == len(set(steps))  # no trial logged twice across the sessions


@pytest.mark.slow  # SIGKILLs and resumes a pruning driver several times: about 15 s
def test_a_sigkilled_pruning_run_keeps_pruned_trials_pruned_and_decides_as_one_run(tmp_path):
    """Inline, the resumed run with ASHA is the very run an uninterrupted search makes: a
    pruned trial stays pruned (its end record never changes), a trial cut short mid-way
    is re-run and gets the journal's answers for the steps it had reported, and the
    pruner rebuilt from the journal decides the rest as it would have."""
    from tests.helpers import pruning as hp

    run_dir, num_trials = tmp_path / "run", 40
    rng = random.Random(11)
    first_seen: dict[int, dict] = {}
    for _ in range(3):
        _kill_driver_mid_run(run_dir, 1, rng, driver=hp.__name__, num_trials=num_trials)
        ends = _ends(_records(run_dir))
        assert len(ends) == len({e["id"] for e in ends}) < num_trials
        for end in ends:
            assert first_seen.setdefault(end["id"], end) == end, "a finished trial changed"
    hp.run_driver(str(run_dir), num_trials, 1)
    records = _records(run_dir)
    ends = {e["id"]: e for e in _ends(records)}
    assert sorted(ends) == list(range(num_trials))
    assert all(first_seen[i] == ends[i] for i in first_seen)
    reference = sn.search(
        hp.curve_space(),
        hp.reporting_reward,
        algorithm="random",
        num_trials=num_trials,
        seed=0,
        pruner=hp.asha(),
        progress=False,
    )
    assert any(t.status == "pruned" for t in reference.trials)
    assert [(t.tokens, t.status.value, t.reward) for t in reference.trials] == [
        (ends[i]["tokens"], ends[i]["status"], ends[i]["reward"]) for i in range(num_trials)
    ]
    # Every answer in the journal is the one the uninterrupted run gave at that step.
    answers: dict[tuple[int, float], bool] = {}
    for r in records:
        if event_of(r) is EventKind.REPORT:
            key = (r["trial"], r["step"])
            assert answers.setdefault(key, r["pruned"]) == r["pruned"], key
    for trial in reference.trials:
        last = trial.metrics["step"] if trial.status == "pruned" else hp.STEPS
        assert [answers[(trial.id, s)] for s in range(1, last + 1)] == [False] * (last - 1) + [
            trial.status == "pruned"
        ]


_HOLDER = """
import sys
sys.path.insert(0, {root!r})
import symbolic_nas as sn
import pytest
from tests.helpers import tuner as h
sn.search(
    h.behaviour_space(),
    h.FaultyEvaluator(sleep=120.0),
    algorithm=h.ScriptedAlgorithm(h.behaviour_tokens("ok", "sleep", "ok")),
    num_trials=3,
    run_dir={run_dir!r},
    progress=False,
    tensorboard=False,
)
"""


def test_a_second_driver_is_refused_and_a_killed_one_leaves_no_stale_lock(tmp_path):
    """Before: a second driver on a running run directory was accepted; both appended to the
    journal (trials ended twice) and the run could never be resumed again. Now the second
    one is refused, naming the holder; the OS drops a SIGKILLed driver's lock at once."""
    run_dir = tmp_path / "run"
    code = _HOLDER.format(root=str(ROOT), run_dir=str(run_dir))
    search = functools.partial(
        sn.search,
        h.behaviour_space(),
        h.FaultyEvaluator(sleep=0.0),
        num_trials=3,
        run_dir=str(run_dir),
        progress=False,
        tensorboard=False,
    )

    def script():
        return h.ScriptedAlgorithm(h.behaviour_tokens("ok", "sleep", "ok"))

    process = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not any(
            event_of(r) is EventKind.START and r["trial"] == 1 for r in _records(run_dir)
        ):
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "the driver made no progress"
            time.sleep(0.05)
        holder = re.escape(f"{str(run_dir)!r} is in use by another driver (pid {process.pid} ")
        holder += re.escape(f"on host {socket.gethostname()}, since ")
        for resume in (True, False):  # Trial 1 sleeps: the holder is running.
            with pytest.raises(RunInUseError, match=holder):
                search(algorithm=script(), resume=resume)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    result = search(algorithm=script(), resume=True)  # No stale lock.
    assert [(t.id, t.status, t.attempts) for t in result.trials] == [
        (0, "completed", 1),
        (1, "completed", 2),
        (2, "completed", 1),
    ]
    records = _records(run_dir)
    assert sorted(e["id"] for e in _ends(records)) == [0, 1, 2]
    starts = [r for r in records if event_of(r) is EventKind.START and r["trial"] == 1]
    assert [r.get("cause") for r in starts] == [None, "driver_stopped"]


# ---------------------------------------------------------------- evaluator errors

ESCAPES = ("ok", "bad_str", "bad_repr", "exit", "interrupt", "ok")
ESCAPE_ERRORS = {
    "bad_str": "BadStr: BadStr({x}) (its str() raised RuntimeError)",
    "bad_repr": "BadStrAndRepr (its str() raised RuntimeError, and so did its repr())",
    "exit": "SystemExit: 3",
    "interrupt": "KeyboardInterrupt",
}


def _escape_search(run_dir, script, evaluate=None, **kwargs):
    kwargs = {"max_consecutive_failures": None, "tensorboard": False, "progress": False,
              "num_trials": len(script), **kwargs}  # fmt: skip
    return sn.search(
        h.escape_space(),
        evaluate or h.EscapingEvaluator(),
        algorithm=h.ScriptedAlgorithm(h.escape_tokens(*script)),
        run_dir=run_dir,
        **kwargs,
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_every_error_an_evaluator_raises_fails_its_trial_and_the_search_goes_on(tmp_path, workers):
    """An exception whose str() raises, sys.exit() and a KeyboardInterrupt raised by code:
    inline and in worker processes, each is the trial's failure with a readable text."""
    result = _escape_search(tmp_path / "run", ESCAPES, workers=workers)
    assert [t.id for t in result.trials] == list(range(len(ESCAPES)))
    for trial in result.trials:
        how = h.ESCAPES[trial.tokens[0]]
        assert trial.attempts == 1, trial
        if how == "ok":
            assert trial.status == "completed"
        else:
            assert trial.status == "failed"
            assert trial.error == ESCAPE_ERRORS[how].format(x=trial.tokens[1])
    records = _records(tmp_path / "run")
    assert not [r for r in records if r["event"] == "lost"]
    assert [r["reason"] for r in records if r["event"] == "stop"] == ["completed"]


@pytest.mark.parametrize("how", ["sigint", "caught_sigint"])
def test_the_users_ctrl_c_stops_an_inline_search_and_its_trial_runs_on_resume(tmp_path, how):
    """A SIGINT that reaches the driver during an evaluation stops the search, even when
    the evaluator catches the KeyboardInterrupt; the trial is not recorded."""
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        _escape_search(run_dir, ("ok", how, "ok"))
    records = _records(run_dir)
    assert [e["id"] for e in _ends(records)] == [0]
    assert [r["reason"] for r in records if r["event"] == "stop"] == ["interrupted"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.warns(EvaluatorChangedWarning):  # A calm evaluator for the rest.
        resumed = _escape_search(run_dir, ("ok", how, "ok"), lambda arch: 1.0, resume=True)
    assert [(t.id, t.status, t.attempts) for t in resumed.trials] == [
        (0, "completed", 1), (1, "completed", 2), (2, "completed", 1)
    ]  # fmt: skip


def test_a_worker_that_dies_tells_the_driver_its_last_error():
    from symbolic_nas.tuner.evaluation import Task
    from symbolic_nas.tuner.executors.local import ProcessExecutor

    with ProcessExecutor(workers=1, gpus=[]) as executor:
        executor.start(h.ExplodingEvaluation())
        executor.submit(Task(trial_id=0, tokens=[0]))
        deadline = time.monotonic() + 120
        outcomes = []
        while not outcomes and time.monotonic() < deadline:
            outcomes = executor.wait(timeout=1.0)
    (outcome,) = outcomes
    assert outcome.status == "lost"
    assert outcome.error.startswith("WorkerDied: process-0")
    assert outcome.error.endswith("exited with code 7 mid-trial; its last error: SystemExit: 7")


# ---------------------------------------------------------------- workers dying at start


@pytest.mark.slow  # six worker processes start: 14 s
def test_workers_killed_while_starting_are_replaced_and_their_trials_kept(tmp_path):
    """Each of two workers is SIGKILLed twice while loading the evaluation (four deaths,
    more than the old limit of three): replaced, and no trial counts an attempt."""
    markers = tmp_path / "markers"
    markers.mkdir()
    result = _escape_search(
        tmp_path / "run", ("ok",) * 4, h.EscapingEvaluator(str(markers), start_deaths=2),
        workers=2, gpus=["0", "1"],
    )  # fmt: skip
    assert len(list(markers.iterdir())) == 4
    assert [(t.status, t.attempts) for t in result.trials] == [("completed", 1)] * 4
    assert not [r for r in _records(tmp_path / "run") if r["event"] == "lost"]


def test_a_worker_that_keeps_dying_while_starting_stops_the_search(tmp_path):
    from symbolic_nas.tuner.executors.local import ProcessExecutor, WorkerError

    executor = ProcessExecutor(workers=1, gpus=["0"], start_retries=1)
    with pytest.raises(WorkerError, match=r"^worker 0 died 2 times in a row while "
                       r"starting \(last exit code -9\); giving up$"):  # fmt: skip
        _escape_search(None, ("ok",) * 2, h.EscapingEvaluator(str(tmp_path), start_deaths=9),
                       executor=executor)  # fmt: skip
    assert len(list(tmp_path.iterdir())) == 2


# ---------------------------------------------------------------- damaged run directories


def _small_run(run_dir, num_trials, **kwargs):
    return sn.search(h.small_space(), h.small_reward, algorithm="random", num_trials=num_trials,
                     run_dir=run_dir, resume=True, tensorboard=False, progress=False,
                     **kwargs)  # fmt: skip


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ('{"event": "end", "trial": 5}', "`trial` must be a trial record (a dict), but got 5"),
        ('{"event": "propose", "tokens": [0]}', "`trial` is missing"),
        ('{"event": "end", "trial": {"id": 9, "tokens": [0, 1], "status": "done"}}',
         "`trial.status` must be one of ['completed', 'failed', 'pruned'], but got 'done'"),
    ],
)  # fmt: skip
def test_a_journal_record_of_the_wrong_shape_names_the_file_and_line(tmp_path, record, problem):
    run_dir = tmp_path / "run"
    _small_run(run_dir, 2)
    journal = run_dir / "journal.jsonl"
    lines = journal.read_text().splitlines()
    run_id = json.loads((run_dir / "config.json").read_text())["run_id"]
    record = json.dumps({**json.loads(record), "run_id": run_id})  # of this very run
    journal.write_text("\n".join([*lines[:3], record, *lines[3:]]) + "\n")
    message = f"journal {str(journal)!r} has a record of the wrong shape at line 4: {problem}"
    with pytest.raises(ValueError, match=re.escape(message)):
        _small_run(run_dir, 4)


def test_an_unreadable_checkpoint_says_so_and_the_journal_alone_recovers_the_run(tmp_path):
    run_dir = tmp_path / "run"
    first = _small_run(run_dir, 4)
    checkpoint = run_dir / "checkpoint.pt"
    saved = checkpoint.read_bytes()
    torch.save({"format": 1, "position": "?"}, tmp_path / "other.pt")
    damages = [
        (b"not a checkpoint", "cannot be read ("),
        (saved[:100], "cannot be read ("),  # torn
        ((tmp_path / "other.pt").read_bytes(), "is not a symbolic_nas checkpoint of format"),
    ]
    for damage, problem in damages:
        checkpoint.write_bytes(damage)
        with pytest.raises(ResumeError) as caught:
            _small_run(run_dir, 8)
        assert f"checkpoint {str(checkpoint)!r} {problem}" in str(caught.value)
        assert "delete it and resume again: the journal alone restores" in str(caught.value)
    checkpoint.unlink()
    resumed = _small_run(run_dir, 8)
    assert [t.tokens for t in resumed.trials[:4]] == [t.tokens for t in first.trials]
    assert [t.tokens for t in resumed.trials] == [t.tokens for t in _small_run(None, 8).trials]
