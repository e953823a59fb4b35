"""Tests for the journal's schema: trial statuses, event kinds, record writers and reader."""

from __future__ import annotations

import json
import pickle
import re

import pytest

import symbolic_nas as sn
from symbolic_nas.algorithms.base import Proposal
from symbolic_nas.storage.journal import InMemoryStorage, decode_record, encode_record
from symbolic_nas.storage.records import (
    EventKind,
    end_record,
    event_of,
    lost_record,
    propose_record,
    read_history,
    run_record,
    start_record,
    stop_record,
)
from symbolic_nas.storage.trial import Trial, TrialStatus
from symbolic_nas.tuner.evaluation import Outcome

# One session as the journal held it before statuses and kinds were enums (plain
# strings, the key order of the time); it must read back the same for ever.
OLD_JOURNAL = """\
{"event":"run","session":1,"resumed":false,"num_trials":4,"time":1.5,"pid":7}
{"event":"propose","trial":0,"tokens":[1,0],"version":0,"meta":{},"time":1.5}
{"event":"start","trial":0,"attempt":1,"worker":"driver","time":1.5}
{"event":"end","trial":{"id":0,"tokens":[1,0],"status":"completed","reward":0.5,\
"metrics":{"reward":0.5},"error":null,"attempts":1,"started":1.5,"duration":0.25,\
"worker":"driver","traceback":null},"feedback":0.5}
{"event":"propose","trial":1,"tokens":[0,1],"version":0,"meta":{},"time":1.5}
{"event":"start","trial":1,"attempt":1,"worker":"pid 9","time":1.5}
{"event":"lost","trial":1,"attempt":1,"error":"WorkerDied: killed","time":1.5}
{"event":"start","trial":1,"attempt":2,"worker":"pid 10","time":1.5}
{"event":"end","trial":{"id":1,"tokens":[0,1],"status":"failed","reward":null,\
"metrics":{},"error":"ValueError: bad","attempts":2,"started":1.5,"duration":0.25,\
"worker":"pid 10","traceback":"Traceback ..."},"feedback":null}
{"event":"propose","trial":2,"tokens":[1,1],"version":0,"meta":{},"time":1.5}
{"event":"stop","reason":"interrupted","time":1.5}
"""


def test_statuses_are_strings_with_a_lifecycle():
    assert [s.value for s in TrialStatus] == [
        "queued", "running", "completed", "failed", "lost", "pruned",
    ]  # fmt: skip
    assert {s for s in TrialStatus if s.is_finished()} == {
        TrialStatus.COMPLETED,
        TrialStatus.FAILED,
        TrialStatus.PRUNED,
    }
    for status in TrialStatus:
        assert status == status.value and str(status) == f"{status}" == status.value
        assert json.dumps({"status": status}) == f'{{"status": "{status.value}"}}'
        assert pickle.loads(pickle.dumps(status)) is status
    assert sn.TrialStatus is TrialStatus
    names = "('queued', 'running', 'completed', 'failed', 'lost', 'pruned')"
    with pytest.raises(
        ValueError, match=re.escape(f"`status` must be one of {names}, but got 'done'")
    ):
        TrialStatus.parse("done")


def test_event_kinds_are_strings_and_unknown_kinds_are_skipped():
    assert [k.value for k in EventKind] == [
        "run", "propose", "start", "lost", "end", "stop", "report",
    ]  # fmt: skip
    for kind in EventKind:
        assert event_of({"event": kind.value}) is kind and f"{kind}" == kind.value
    assert event_of({"event": "note"}) is None and event_of({}) is None
    assert event_of({"event": ["end"]}) is None and event_of({"event": None}) is None
    history = read_history([{"event": "note", "trial": 0}, {"event": "run"}])
    assert history.sessions == 1 and not history.proposals and not history.finished


def test_trials_and_outcomes_take_a_status_string_and_keep_the_member():
    trial = Trial(0, [1], status="completed", reward=0.5)
    assert trial.status is TrialStatus.COMPLETED and trial.done
    assert Trial(1, [1]).status is TrialStatus.QUEUED and not Trial(1, [1]).done
    assert Outcome(0, "lost").status is TrialStatus.LOST
    with pytest.raises(ValueError, match="`status` must be one of"):
        Trial(2, [1], status="finished")
    with pytest.raises(ValueError, match="`status` must be one of"):
        Trial.from_record({"id": 3, "tokens": [1], "status": "done"})


def test_written_records_keep_the_journal_format():
    """The writers produce exactly the JSON lines the journal held before the enums."""
    ended = Trial(
        0, [1, 0], status=TrialStatus.COMPLETED, reward=0.5, metrics={"reward": 0.5},
        attempts=1, started=1.5, duration=0.25, worker="driver",
    )  # fmt: skip
    lost = Trial(1, [0, 1], status=TrialStatus.RUNNING, attempts=1, worker="pid 9", started=1.5)
    records = [
        run_record(session=1, resumed=False, num_trials=4),
        propose_record(Proposal(0, [1, 0])),
        start_record(Trial(0, [1, 0], attempts=1, worker="driver", started=1.5)),
        end_record(ended, 0.5),
        propose_record(Proposal(1, [0, 1])),
        start_record(lost),
        lost_record(lost, "WorkerDied: killed"),
        stop_record("interrupted"),
    ]
    for record in records:  # Fixed stand-ins for the time and the process id.
        record.update({k: v for k, v in (("time", 1.5), ("pid", 7)) if k in record})
    old = [line for line in OLD_JOURNAL.splitlines() if '"status":"failed"' not in line]
    old = [line for line in old if '"attempt":2' not in line and '"trial":2' not in line]
    assert [encode_record(record) for record in records] == old
    # Plain strings on disk, so every reader (also another version's) sees the same.
    assert all(type(record["event"]) is str for record in records)
    assert type(end_record(ended, 0.5)["trial"]["status"]) is str
    assert propose_record(Proposal(2, [1]), replaces=True)["replaces"] is True


def test_an_old_journal_reads_back_with_enum_statuses():
    storage = InMemoryStorage()
    for line in OLD_JOURNAL.splitlines():
        storage.append(decode_record(line))
    history = read_history(
        storage.read(), sn.encode({"a": sn.oneof([0, 1]), "b": sn.oneof([0, 1])})
    )
    assert history.sessions == 1 and history.unfinished == [2]
    assert history.attempts == {0: 1, 1: 2}
    first, second = history.finished[0], history.finished[1]
    assert first.status is TrialStatus.COMPLETED and first.reward == 0.5
    assert first.metrics == {"reward": 0.5} and first.dna.to_numbers() == [1, 0]
    assert second.status is TrialStatus.FAILED and second.error == "ValueError: bad"
    assert second.attempts == 2 and second.worker == "pid 10"
    assert [event_of(r) for r in storage.read()] == [
        EventKind.RUN, EventKind.PROPOSE, EventKind.START, EventKind.END, EventKind.PROPOSE,
        EventKind.START, EventKind.LOST, EventKind.START, EventKind.END, EventKind.PROPOSE,
        EventKind.STOP,
    ]  # fmt: skip
    # A trial written back is the old record again (plus its choices' labels).
    written = end_record(second, None)
    assert written.pop("labels") == {"a": "0", "b": "1"}
    assert written == storage.read()[8]
