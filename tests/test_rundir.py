"""Tests for the run directory: config, journal, checkpoints, replay and resume rules."""

from __future__ import annotations

import json
import os
import shutil
import socket

import pytest
import torch

import symbolic_nas as sn
from symbolic_nas.algorithms.controller import Reinforce
from symbolic_nas.storage.journal import JournalStorage
from symbolic_nas.storage.records import EventKind as E
from symbolic_nas.storage.records import event_of
from symbolic_nas.storage.rundir import (
    CHECKPOINT,
    CONFIG,
    JOURNAL,
    LOCK,
    ResumeError,
    Run,
    RunInUseError,
    space_fingerprint,
)
from symbolic_nas.storage.trial import TrialStatus
from symbolic_nas.tuner.evaluation import Outcome
from symbolic_nas.tuner.executors.local import InlineExecutor
from tests.helpers import tuner as h


def _search(run_dir, **kwargs):
    kwargs = {
        "algorithm": "random",
        "num_trials": 10,
        "seed": 0,
        "progress": False,
        "tensorboard": False,
        "run_dir": run_dir,
        **kwargs,
    }
    return sn.search(
        kwargs.pop("space", h.wide_space()), kwargs.pop("evaluate", h.token_reward), **kwargs
    )


def _events(run_dir):
    return [event_of(r) for r in JournalStorage(run_dir / JOURNAL).read()]


def _as_records(result):
    return [(t.id, t.tokens, t.status, t.reward) for t in result.trials]


def test_a_run_directory_holds_config_journal_and_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    result = _search(run_dir, num_trials=3, metadata={"note": "hello"})
    assert sorted(p.name for p in run_dir.iterdir()) == [CHECKPOINT, CONFIG, LOCK, JOURNAL]
    config = json.loads((run_dir / CONFIG).read_text())
    assert config["format"] == 2 and len(config["run_id"]) == 32
    assert config["algorithm"] == "random" and config["num_trials"] == 3 and config["seed"] == 0
    assert config["space"]["fingerprint"] == space_fingerprint(result.codec)
    assert config["evaluator"] == "tests.helpers.tuner:token_reward"
    assert config["evaluator_input"] == "tokens" and config["metadata"] == {"note": "hello"}
    assert _events(run_dir) == [E.RUN] + [E.PROPOSE, E.START, E.END] * 3 + [E.STOP]
    ends = [r for r in JournalStorage(run_dir / JOURNAL).read() if event_of(r) is E.END]
    assert [r["trial"]["reward"] for r in ends] == [t.reward for t in result.trials]
    checkpoint = torch.load(run_dir / CHECKPOINT, weights_only=True)
    assert checkpoint["position"] == len(_events(run_dir)) - 1  # All but the final "stop".
    assert checkpoint["algorithm"]["next_id"] == 3


def test_an_existing_run_is_never_overwritten(tmp_path):
    run_dir = tmp_path / "run"
    _search(run_dir, num_trials=2)
    with pytest.raises(ValueError, match="already holds a run; pass resume=True"):
        _search(run_dir, num_trials=2)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    for resume in (False, True):
        with pytest.raises(ValueError, match="must be empty or missing for a new run"):
            _search(other, resume=resume)
    assert (other / "notes.txt").read_text() == "mine"


def test_resume_on_a_missing_directory_starts_a_new_run(tmp_path):
    result = _search(tmp_path / "new", resume=True, num_trials=2)
    assert len(result.trials) == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"space": {"d0": sn.oneof([0, 1, 2])}}, "holds a run of another space"),
        ({"algorithm": "evolution"}, "algorithm: 'random' in the run, 'evolution' now"),
        ({"seed": 1}, "seed: 0 in the run, 1 now"),
        ({"failure_reward": -1.0}, "failure_reward: None in the run, -1.0 now"),
        ({"evaluate": h.small_reward}, "evaluator_input: 'tokens' in the run, 'model' now"),
    ],
)
def test_resuming_with_another_space_or_config_is_refused(tmp_path, change, message):
    run_dir = tmp_path / "run"
    _search(run_dir, num_trials=2)
    with pytest.raises(ResumeError, match=message):
        _search(run_dir, resume=True, **change)


@pytest.mark.filterwarnings(
    "ignore::symbolic_nas.tuner.EvaluatorChangedWarning"
)  # a counting wrapper
def test_resuming_a_finished_run_runs_nothing_and_extending_it_runs_the_rest(tmp_path):
    run_dir = tmp_path / "run"
    first = _search(run_dir, num_trials=4)
    calls = []

    @sn.evaluator(input="tokens")
    def counted(tokens):
        calls.append(tokens)
        return h.token_reward(tokens)

    again = _search(run_dir, num_trials=4, resume=True, evaluate=counted)
    assert calls == [] and _as_records(again) == _as_records(first)
    longer = _search(run_dir, num_trials=7, resume=True, evaluate=counted)
    assert len(calls) == 3 and _as_records(longer)[:4] == _as_records(first)
    assert _as_records(longer) == _as_records(_search(tmp_path / "ref", num_trials=7))
    assert json.loads((run_dir / CONFIG).read_text())["num_trials"] == 7


def test_an_interrupted_run_resumes_exactly(tmp_path):
    reference = _search(tmp_path / "ref", num_trials=12)
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        _search(run_dir, num_trials=12, callbacks=[h.InterruptAt(5)])
    assert _events(run_dir)[-1] is E.STOP
    resumed = _search(run_dir, num_trials=12, resume=True)
    assert _as_records(resumed) == _as_records(reference)


def test_a_stale_checkpoint_is_caught_up_by_replaying_the_journal(tmp_path):
    """A crash can leave the checkpoint behind the journal: replay restores the rest."""
    reference = _search(tmp_path / "ref", num_trials=12)
    run_dir = tmp_path / "run"
    saved = tmp_path / "early.pt"

    class CopyCheckpoint(sn.tuner.Callback):
        def on_trial_end(self, trial, context):
            if trial.id == 2:
                shutil.copy(run_dir / CHECKPOINT, saved)

    with pytest.raises(KeyboardInterrupt):
        _search(
            run_dir,
            num_trials=12,
            checkpoint_interval=0,
            callbacks=[CopyCheckpoint(), h.InterruptAt(8)],
        )
    shutil.copy(saved, run_dir / CHECKPOINT)  # As if the later checkpoints never happened.
    assert (
        torch.load(run_dir / CHECKPOINT, weights_only=True)["position"] < len(_events(run_dir)) - 10
    )
    resumed = _search(run_dir, num_trials=12, resume=True)
    assert _as_records(resumed) == _as_records(reference)


def test_replay_that_contradicts_a_finished_trial_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    _search(run_dir, num_trials=4, checkpoint_interval=1e9)
    (run_dir / CHECKPOINT).unlink()  # Replay everything from the start...
    records = JournalStorage(run_dir / JOURNAL).read()
    for record in records:  # ...against a journal where trial 1 had other tokens.
        if event_of(record) is E.PROPOSE and record["trial"] == 1:
            record["tokens"] = [(t + 1) % 4 for t in record["tokens"]]
        if event_of(record) is E.END and record["trial"]["id"] == 1:
            record["trial"]["tokens"] = [(t + 1) % 4 for t in record["trial"]["tokens"]]
    _rewrite_journal(run_dir, records)
    with pytest.raises(
        ResumeError,
        match=r"re-proposed finished trial 1 .* not deterministic .*none of the settings "
        r"session 1 journaled changed: budget, algorithm, symbolic_nas, torch, python",
    ):
        _search(run_dir, num_trials=6, resume=True)


def test_a_torn_last_journal_line_is_tolerated(tmp_path):
    run_dir = tmp_path / "run"
    first = _search(run_dir, num_trials=3)
    with open(run_dir / JOURNAL, "ab") as f:
        f.write(b'{"event":"propose","trial":3,"tok')
    resumed = _search(run_dir, num_trials=5, resume=True)
    assert _as_records(resumed)[:3] == _as_records(first) and len(resumed.trials) == 5


def test_a_trial_that_was_running_is_run_again_once(tmp_path):
    class InterruptOnStart(sn.tuner.Callback):
        def on_trial_start(self, trial, context):
            if trial.id == 2:
                raise KeyboardInterrupt  # As if the driver died while trial 2 ran.

    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        _search(run_dir, num_trials=6, callbacks=[InterruptOnStart()])
    assert _events(run_dir)[-3:] == [E.PROPOSE, E.START, E.STOP]
    resumed = _search(run_dir, num_trials=6, resume=True)
    ends = [
        r["trial"]["id"] for r in JournalStorage(run_dir / JOURNAL).read() if event_of(r) is E.END
    ]
    assert ends == list(range(6))
    assert [t.attempts for t in resumed.trials] == [1, 1, 2, 1, 1, 1]
    assert _as_records(resumed) == _as_records(_search(tmp_path / "ref", num_trials=6))


def test_a_journal_written_before_the_enums_resumes(tmp_path):
    """Plain-string statuses and event kinds, as journals held them, resume unchanged."""
    reference = _search(tmp_path / "ref", num_trials=5)
    tokens = [json.dumps(t.tokens, separators=(",", ":")) for t in reference.trials]
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    config = json.loads((tmp_path / "ref" / CONFIG).read_text())
    del config["run_id"]  # A run directory of format 1, from before run ids.
    (run_dir / CONFIG).write_text(json.dumps({**config, "format": 1}))
    old = (
        '{"event":"run","session":1,"resumed":false,"num_trials":5,"time":1.5,"pid":7}\n'
        f'{{"event":"propose","trial":0,"tokens":{tokens[0]},"version":0,"meta":{{}},"time":1.5}}\n'
        '{"event":"start","trial":0,"attempt":1,"worker":"driver","time":1.5}\n'
        f'{{"event":"end","trial":{{"id":0,"tokens":{tokens[0]},"status":"completed",'
        '"reward":123.0,"metrics":{"reward":123.0},"error":null,"attempts":1,"started":1.5,'
        '"duration":0.25,"worker":"driver","traceback":null},"feedback":123.0}\n'
        f'{{"event":"propose","trial":1,"tokens":{tokens[1]},"version":0,"meta":{{}},"time":1.5}}\n'
        '{"event":"start","trial":1,"attempt":1,"worker":"driver","time":1.5}\n'
        f'{{"event":"end","trial":{{"id":1,"tokens":{tokens[1]},"status":"failed",'
        '"reward":null,"metrics":{},"error":"ValueError: old","attempts":1,"started":1.5,'
        '"duration":0.25,"worker":"driver","traceback":null},"feedback":null}\n'
        f'{{"event":"propose","trial":2,"tokens":{tokens[2]},"version":0,"meta":{{}},"time":1.5}}\n'
        '{"event":"start","trial":2,"attempt":1,"worker":"driver","time":1.5}\n'
    )  # The driver died while trial 2 ran; no checkpoint: everything is replayed.
    (run_dir / JOURNAL).write_text(old)
    resumed = _search(run_dir, num_trials=5, resume=True)
    kept, failed, *rest = resumed.trials
    assert [t.tokens for t in resumed.trials] == [t.tokens for t in reference.trials]
    assert kept.status is TrialStatus.COMPLETED and kept.reward == 123.0
    assert failed.status is TrialStatus.FAILED and failed.error == "ValueError: old"
    assert _as_records(resumed)[2:] == _as_records(reference)[2:]
    assert [t.attempts for t in rest] == [2, 1, 1]
    text = (run_dir / JOURNAL).read_text()
    assert text.startswith(old)  # Kept as it was; new records in the same format.
    assert '"event":"run","session":2,"resumed":true' in text
    assert text.count('"status":"completed"') == 4


def test_space_fingerprint_masks_addresses_but_sees_labels():
    class Opaque:
        pass

    def build(candidates):
        return sn.encode({"op": sn.oneof(candidates), "k": sn.oneof([3, 5])})

    same = {space_fingerprint(build([Opaque(), "relu"])) for _ in range(2)}
    assert len(same) == 1  # Two objects at different addresses.
    assert space_fingerprint(build([1, "relu"])) != space_fingerprint(build([2, "relu"]))
    assert space_fingerprint(sn.encode(h.small_space())) != space_fingerprint(
        sn.encode(h.wide_space())
    )


def test_run_rejects_a_file_as_directory(tmp_path):
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(ValueError, match="`run_dir` must be a directory"):
        Run(file)


# ---------------------------------------------------------------------- issue 9


class InterruptOnStart(sn.tuner.Callback):
    """Raises KeyboardInterrupt when trial ``trial_id`` starts for the ``nth`` time in this
    session (the driver dies while it runs)."""

    def __init__(self, trial_id, nth=1):
        self.trial_id, self.nth = trial_id, nth

    def on_trial_start(self, trial, context):
        if trial.id == self.trial_id:
            self.nth -= 1
            if self.nth == 0:
                raise KeyboardInterrupt


class LoseTrial(InlineExecutor):
    """Inline, but the first ``times`` attempts of trial ``trial_id`` here are "lost"
    (as if its worker process died)."""

    def __init__(self, trial_id, times):
        super().__init__()
        self.trial_id, self.times = trial_id, times

    def wait(self, timeout):
        task = self._task
        if task is not None and task.trial_id == self.trial_id and self.times > 0:
            self._task, self.times = None, self.times - 1
            return [Outcome(task.trial_id, "lost", error="WorkerDied: simulated death")]
        return super().wait(timeout)


def _rewrite_journal(run_dir, records):
    (run_dir / JOURNAL).unlink()
    journal = JournalStorage(run_dir / JOURNAL)
    for record in records:
        journal.append(record)


def test_one_driver_at_a_time_holds_a_run_directory(tmp_path):
    """Before: nothing stopped a second driver on a run directory (see also test_faults)."""
    first, second = Run(tmp_path / "run"), Run(tmp_path / "run")
    first.acquire()
    lock = json.loads((tmp_path / "run" / LOCK).read_text())
    assert lock["pid"] == os.getpid() and lock["host"] == socket.gethostname()
    with pytest.raises(RunInUseError, match=rf"pid {os.getpid()} on host"):
        second.acquire()
    first.close()  # Releases the lock.
    second.acquire()
    second.close()


def test_stale_temporary_files_are_removed_and_never_block_a_new_run(tmp_path):
    """Before: a ``.config.json.*.tmp`` left by a crash during the very first write made
    ``resume=True`` fail ("must be empty or missing for a new run"), and interrupted
    atomic writes left their temporary files forever."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / ".config.json.k2j4x8.tmp").write_text('{"format": ')
    assert len(_search(run_dir, resume=True, num_trials=2).trials) == 2
    (run_dir / ".checkpoint.pt.a1b2c3.tmp").write_bytes(b"torn")
    (run_dir / ".config.json.zz9.tmp").write_text("{")
    assert len(_search(run_dir, resume=True, num_trials=3).trials) == 3
    assert not list(run_dir.glob(".*.tmp"))
    assert sorted(p.name for p in run_dir.iterdir()) == [CHECKPOINT, CONFIG, LOCK, JOURNAL]


def _budgeted_reinforce():
    return sn.algorithms.get("reinforce", seed=0, batch_size=2)


def test_replay_without_a_checkpoint_uses_the_budget_the_run_ran_with(tmp_path, monkeypatch):
    """Before: with checkpoint.pt deleted, replaying a reinforce run whose num_trials
    changed set the controller's automatic learning rate from today's num_trials, so
    replay diverged ("re-proposed finished trial ... not deterministic")."""
    monkeypatch.setattr(Reinforce, "AUTO_LEARNING_RATE", (1.0, 4))  # budget > 4: lr changes
    kept, replayed = tmp_path / "kept", tmp_path / "replayed"
    for run_dir in (kept, replayed):
        _search(run_dir, algorithm=_budgeted_reinforce(), num_trials=8)
    (replayed / CHECKPOINT).unlink()  # The documented way out of a corrupt checkpoint.
    extended = _search(replayed, algorithm=_budgeted_reinforce(), num_trials=12, resume=True)
    reference = _search(kept, algorithm=_budgeted_reinforce(), num_trials=12, resume=True)
    assert _as_records(extended) == _as_records(reference)
    (replayed / CHECKPOINT).unlink()  # Sessions with 8 and 12 trials, replayed again.
    again = _search(replayed, algorithm=_budgeted_reinforce(), num_trials=14, resume=True)
    assert _as_records(again)[:12] == _as_records(reference)
    runs = [r for r in JournalStorage(replayed / JOURNAL).read() if event_of(r) is E.RUN]
    assert [(r["num_trials"], r["settings"]["budget"]) for r in runs] == [(8, 8), (12, 8), (14, 8)]


def test_a_diverging_replay_names_the_setting_that_changed(tmp_path):
    """Before: the error only said the algorithm "is not deterministic"."""
    run_dir = tmp_path / "run"
    slow = sn.algorithms.get("reinforce", seed=0, batch_size=2, learning_rate=0.01)
    _search(run_dir, algorithm=slow, num_trials=6)
    (run_dir / CHECKPOINT).unlink()
    fast = sn.algorithms.get("reinforce", seed=0, batch_size=2, learning_rate=5.0)
    with pytest.raises(
        ResumeError,
        match=r"algorithm: 'Reinforce\(.*learning_rate=0.01.*' in "
        r"session 1, 'Reinforce\(.*learning_rate=5.0.*' now",
    ):
        _search(run_dir, algorithm=fast, num_trials=6, resume=True)


def test_a_journal_from_another_run_is_refused(tmp_path):
    """Before: a journal copied from another run was accepted and its trials replaced
    this run's (here both runs are alike: only the run id tells them apart)."""
    mine, other = tmp_path / "mine", tmp_path / "other"
    _search(mine, num_trials=3)
    _search(other, num_trials=3)
    run_id = json.loads((mine / CONFIG).read_text())["run_id"]
    assert {r["run_id"] for r in JournalStorage(mine / JOURNAL).read()} == {run_id}
    shutil.copy(other / JOURNAL, mine / JOURNAL)
    with pytest.raises(ResumeError, match=r"journal .* belongs to another run"):
        _search(mine, num_trials=4, resume=True)


def test_a_checkpoint_from_another_run_is_refused(tmp_path):
    """Before: the checkpoint of a seed-1 run was loaded under a seed-0 config."""
    mine, other = tmp_path / "mine", tmp_path / "other"
    _search(mine, num_trials=3, seed=0)
    _search(other, num_trials=3, seed=1)
    shutil.copy(other / CHECKPOINT, mine / CHECKPOINT)
    with pytest.raises(ResumeError, match=r"checkpoint .* belongs to another run .* delete it"):
        _search(mine, num_trials=4, resume=True)


@pytest.mark.parametrize("where", ["before", "after"])
def test_a_trial_ends_once(tmp_path, where):
    """Before: a second ``end`` of a trial inserted before the real one won."""
    run_dir = tmp_path / "run"
    _search(run_dir, num_trials=3)
    records = JournalStorage(run_dir / JOURNAL).read()
    index = next(i for i, r in enumerate(records) if event_of(r) is E.END and r["trial"]["id"] == 1)
    forged = json.loads(json.dumps(records[index]))
    forged["trial"]["reward"] = 1e9
    records.insert(index if where == "before" else index + 1, forged)
    _rewrite_journal(run_dir, records)
    with pytest.raises(ResumeError, match=r"corrupt: record \d+ is a second `end` of trial 1"):
        _search(run_dir, num_trials=4, resume=True)


def test_an_end_with_other_tokens_than_its_proposal_is_refused(tmp_path):
    """Before: the ``end`` record's tokens were kept whatever the trial had been proposed as."""
    run_dir = tmp_path / "run"
    _search(run_dir, num_trials=3)
    records = JournalStorage(run_dir / JOURNAL).read()
    end = next(r for r in records if event_of(r) is E.END and r["trial"]["id"] == 2)
    end["trial"]["tokens"] = [(t + 1) % 4 for t in end["trial"]["tokens"]]
    _rewrite_journal(run_dir, records)
    with pytest.raises(ResumeError, match=r"corrupt: record \d+ ends trial 2 with tokens"):
        _search(run_dir, num_trials=4, resume=True)


def test_a_run_directory_without_a_run_id_still_resumes_and_is_bound(tmp_path):
    """Run directories of format 1 (no run id) are bound to a new id on their next session;
    their older records are accepted, a later record without the id is not."""
    run_dir = tmp_path / "run"
    first = _search(run_dir, num_trials=4)
    config = json.loads((run_dir / CONFIG).read_text())
    del config["run_id"]
    (run_dir / CONFIG).write_text(json.dumps({**config, "format": 1}))
    records = [{k: v for k, v in r.items() if k != "run_id"} for r in _records(run_dir)]
    _rewrite_journal(run_dir, records)
    checkpoint = torch.load(run_dir / CHECKPOINT, weights_only=True)
    del checkpoint["run_id"]
    torch.save({**checkpoint, "format": 1}, run_dir / CHECKPOINT)
    resumed = _search(run_dir, num_trials=6, resume=True)
    assert _as_records(resumed)[:4] == _as_records(first)
    assert _as_records(resumed) == _as_records(_search(tmp_path / "ref", num_trials=6))
    config = json.loads((run_dir / CONFIG).read_text())
    assert config["format"] == 2 and config["legacy_records"] == len(records)
    assert all(r["run_id"] == config["run_id"] for r in _records(run_dir)[len(records) :])
    assert len(_search(run_dir, num_trials=7, resume=True).trials) == 7
    unbound = _records(run_dir)
    unbound[-1].pop("run_id")
    _rewrite_journal(run_dir, unbound)
    with pytest.raises(ResumeError, match=r"has no run id"):
        _search(run_dir, num_trials=7, resume=True)


def _records(run_dir):
    return JournalStorage(run_dir / JOURNAL).read()


def test_driver_crashes_do_not_count_as_attempts_of_a_running_trial(tmp_path):
    """Before: two driver crashes while trial 2 ran, then one death of its worker, failed it
    with "attempt 3 of 2" at max_retries=1; only deaths of its own worker count."""
    run_dir = tmp_path / "run"
    for _ in range(2):
        with pytest.raises(KeyboardInterrupt):
            _search(run_dir, num_trials=4, resume=True, callbacks=[InterruptOnStart(2)])
    result = _search(run_dir, num_trials=4, resume=True, max_retries=1, executor=LoseTrial(2, 1))
    trial = result.trials[2]
    assert trial.status == "completed" and trial.attempts == 4
    starts = [r for r in _records(run_dir) if event_of(r) is E.START and r["trial"] == 2]
    assert [r.get("cause") for r in starts] == [
        None,
        "driver_stopped",
        "driver_stopped",
        "worker_died",
    ]
    other = tmp_path / "other"  # Its worker died, then the driver while it ran again:
    with pytest.raises(KeyboardInterrupt):  # that death still counts after the resume.
        _search(
            other, num_trials=4, callbacks=[InterruptOnStart(2, nth=2)], executor=LoseTrial(2, 1)
        )
    result = _search(other, num_trials=4, resume=True, max_retries=1, executor=LoseTrial(2, 1))
    assert result.trials[2].error == (
        "WorkerDied: simulated death (attempt 2 of 2; 1 more cut short by the driver stopping)"
    )


def test_resume_with_fewer_trials_than_finished_is_refused_and_leaves_the_config(tmp_path):
    run_dir = str(tmp_path / "run")
    _search(run_dir, num_trials=6)
    before = (tmp_path / "run" / CONFIG).read_text()
    with pytest.raises(ResumeError, match=r"`num_trials` must be at least the 6 trials"):
        _search(run_dir, num_trials=2, resume=True)
    assert (tmp_path / "run" / CONFIG).read_text() == before
