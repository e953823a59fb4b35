"""Tests for the run directory: config, journal, checkpoints, replay and resume rules."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import tuner_helpers as h

import symbolic_nas as sn
from symbolic_nas.storage.journal import JournalStorage
from symbolic_nas.storage.records import EventKind as E
from symbolic_nas.storage.records import event_of
from symbolic_nas.storage.rundir import (
    CHECKPOINT,
    CONFIG,
    JOURNAL,
    ResumeError,
    Run,
    space_fingerprint,
)
from symbolic_nas.storage.trial import TrialStatus


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
    assert sorted(p.name for p in run_dir.iterdir()) == [CHECKPOINT, CONFIG, JOURNAL]
    config = json.loads((run_dir / CONFIG).read_text())
    assert config["algorithm"] == "random" and config["num_trials"] == 3 and config["seed"] == 0
    assert config["space"]["fingerprint"] == space_fingerprint(result.codec)
    assert config["evaluator"] == "tuner_helpers:token_reward"
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
    (run_dir / JOURNAL).unlink()
    journal = JournalStorage(run_dir / JOURNAL)
    for record in records:
        journal.append(record)
    with pytest.raises(ResumeError, match=r"re-proposed finished trial 1 .* not deterministic"):
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
    shutil.copy(tmp_path / "ref" / CONFIG, run_dir / CONFIG)
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
