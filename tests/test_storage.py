"""Tests for symbolic_nas.storage.journal: encoding, torn-tail tolerance, SIGKILL, threads."""

from __future__ import annotations

import json
import math
import os
import pathlib
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from symbolic_nas.storage import journal as storage_module
from symbolic_nas.storage.journal import InMemoryStorage, JournalStorage, Storage

RECORD = {
    "trial": 3,
    "reward": math.nan,
    "best": math.inf,
    "worst": -math.inf,
    "metrics": {"val_accuracy": [0.5, math.nan, 0.75], "nested": {"deep": [[-math.inf]]}},
    "tokens": (1, 2, 3),
    "name": 'cell \u00e9\n"quoted"',
    "ok": True,
    "none": None,
    "fake_marker": {"$float": "nan"},
    "fake_dict": {"$dict": [["a", 1]]},
    "two_keys": {"$float": "inf", "x": 1},
}


def _assert_same(actual: object, expected: object) -> None:
    """Deep equality where NaN equals NaN and tuples compare as lists."""
    if isinstance(expected, float) and math.isnan(expected):
        assert isinstance(actual, float) and math.isnan(actual)
    elif isinstance(expected, dict):
        assert isinstance(actual, dict) and list(actual) == list(expected)
        for key in expected:
            _assert_same(actual[key], expected[key])
    elif isinstance(expected, (list, tuple)):
        assert isinstance(actual, list) and len(actual) == len(expected)
        for a, e in zip(actual, expected, strict=True):
            _assert_same(a, e)
    else:
        assert type(actual) is type(expected) and actual == expected


@pytest.fixture(params=["memory", "journal"])
def store(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Storage:
    if request.param == "memory":
        return InMemoryStorage()
    return JournalStorage(tmp_path / "sub" / "dir" / "trials.jsonl")


def test_round_trip_keeps_non_finite_floats_and_nesting(store: Storage) -> None:
    store.append(RECORD)
    store.append({"trial": 4, "reward": 0.25})
    records = store.read()
    assert len(records) == 2
    _assert_same(records[0], RECORD)
    assert records[1] == {"trial": 4, "reward": 0.25}


def test_append_snapshots_the_record(store: Storage) -> None:
    record = {"values": [1]}
    store.append(record)
    record["values"].append(2)
    assert store.read() == [{"values": [1]}]
    store.read()[0]["values"].append(3)
    assert store.read() == [{"values": [1]}]


def test_numpy_scalars_become_python_numbers(store: Storage) -> None:
    store.append({"a": np.float32(0.5), "b": np.int64(7), "c": np.bool_(True), "d": np.nan})
    (record,) = store.read()
    assert record["a"] == 0.5 and type(record["b"]) is int and record["c"] is True
    assert math.isnan(record["d"])


@pytest.mark.parametrize(
    ("record", "match"),
    [
        ({"a": {1: "x"}}, r"record\['a'\] has a non-string key 1"),
        ({"a": [0, object()]}, r"record\['a'\]\[1\] holds a value of type object"),
        ({"a": {1, 2}}, r"record\['a'\] holds a value of type set"),
    ],
)
def test_unstorable_values_fail_at_append(store: Storage, record: dict, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        store.append(record)
    assert store.read() == []


def test_journal_lines_are_strict_compact_json(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "j.jsonl"
    JournalStorage(path).append({"reward": math.nan, "x": [1, 2]})
    text = path.read_text()
    assert text == '{"reward":{"$float":"nan"},"x":[1,2]}\n'
    json.loads(text, parse_constant=lambda name: pytest.fail(f"non-strict constant {name}"))


def test_journal_reopen_reads_previous_records(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "j.jsonl"
    with JournalStorage(path, fsync=False) as journal:
        for i in range(3):
            journal.append({"i": i})
    reopened = JournalStorage(path)
    reopened.append({"i": 3})
    assert [r["i"] for r in reopened.read()] == [0, 1, 2, 3]
    assert JournalStorage(tmp_path / "missing.jsonl").read() == []


@pytest.mark.parametrize(
    "torn",
    [b'{"i":2,"pad":"xx', b'{"i":2,"pad":"xx\n', b"garbage\n"],
    ids=["partial-no-newline", "invalid-with-newline", "garbage-line"],
)
def test_torn_last_line_is_ignored_then_truncated(tmp_path: pathlib.Path, torn: bytes) -> None:
    path = tmp_path / "j.jsonl"
    first = JournalStorage(path)
    first.append({"i": 0})
    first.append({"i": 1})
    first.close()
    with open(path, "ab") as f:
        f.write(torn)
    # Reading leaves the file alone and skips the torn tail.
    assert [r["i"] for r in first.read()] == [0, 1]
    assert path.read_bytes().endswith(torn)
    # Opening for appending cuts the tail so the next record starts on a clean line.
    journal = JournalStorage(path)
    assert not path.read_bytes().endswith(torn)
    journal.append({"i": 2})
    assert [r["i"] for r in journal.read()] == [0, 1, 2]
    assert path.read_text().splitlines() == ['{"i":0}', '{"i":1}', '{"i":2}']


def test_corrupt_middle_line_raises_with_file_and_line(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text('{"i":0}\n{"i":1\n{"i":2}\n')
    with pytest.raises(ValueError, match=r"j\.jsonl.*line 2"):
        JournalStorage(path)
    path.write_text('{"i":0}\n[1, 2]\n{"i":2}\n')
    with pytest.raises(ValueError, match=r"line 2: a record must be a JSON object"):
        JournalStorage(path)
    # A corrupt line followed only by a torn partial line is still corrupt.
    path.write_text('{"i":0}\nnot json\n{"i":2')
    with pytest.raises(ValueError, match="line 2"):
        JournalStorage(path)


def test_non_standard_constants_are_rejected(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text('{"reward":NaN}\n{"i":1}\n')
    with pytest.raises(ValueError, match="line 1"):
        JournalStorage(path)


def test_threads_append_concurrently(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "j.jsonl"
    journals = [JournalStorage(path, fsync=False), JournalStorage(path, fsync=False)]
    memory = InMemoryStorage()
    threads_count, per_thread = 8, 100
    pad = "x" * 5000  # Larger than small pipe/stdio buffers: one write per record matters.

    def work(t: int) -> None:
        for i in range(per_thread):
            record = {"t": t, "i": i, "pad": pad}
            journals[t % 2].append(record)
            memory.append(record)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = {(t, i) for t in range(threads_count) for i in range(per_thread)}
    for store in (journals[0], memory):
        records = store.read()
        assert len(records) == threads_count * per_thread
        assert {(r["t"], r["i"]) for r in records} == expected
        assert all(r["pad"] == pad for r in records)
        for t in range(threads_count):  # Each thread's records stay in its order.
            assert [r["i"] for r in records if r["t"] == t] == list(range(per_thread))


def test_journal_pickles_by_path(tmp_path: pathlib.Path) -> None:
    journal = JournalStorage(tmp_path / "j.jsonl", fsync=False)
    journal.append({"i": 0})
    copy = pickle.loads(pickle.dumps(journal))
    copy.append({"i": 1})
    assert [r["i"] for r in journal.read()] == [0, 1]
    assert "JournalStorage(" in repr(copy)


def test_bad_arguments(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match=r"`fsync` must be a bool, but got 'yes'"):
        JournalStorage(tmp_path / "j.jsonl", fsync="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`path` must be a file"):
        JournalStorage(tmp_path)
    with pytest.raises(TypeError, match="`record` must be a mapping"):
        InMemoryStorage().append([1, 2])  # type: ignore[arg-type]


_CHILD = textwrap.dedent(
    """
    import importlib.util, os, sys
    # Load storage.py by path: it needs only the standard library and numpy, and this
    # keeps the child from importing the whole package (torch, pyglove).
    spec = importlib.util.spec_from_file_location("journal_under_test", sys.argv[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    journal = module.JournalStorage(sys.argv[2], fsync=False)
    pad = "y" * 3000
    i = 0
    while True:
        journal.append({"i": i, "reward": float("nan") if i % 7 == 0 else i / 3, "pad": pad})
        os.write(1, b"%d\\n" % i)  # Acknowledge: this record's append has returned.
        i += 1
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
def test_sigkill_mid_append_loses_at_most_the_last_record(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "killed.jsonl"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, storage_module.__file__, str(path)],
        stdout=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        acknowledged = b""
        while acknowledged.count(b"\n") < 300:  # Let it get well into the loop.
            assert child.poll() is None, "child exited early"
            assert time.monotonic() < deadline, "child too slow"
            acknowledged += os.read(child.stdout.fileno(), 65536)  # type: ignore[union-attr]
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        acknowledged += child.stdout.read()  # type: ignore[union-attr]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()  # type: ignore[union-attr]
    assert child.returncode == -signal.SIGKILL
    last_acknowledged = int(acknowledged.splitlines()[-1])

    records = JournalStorage(path).read()
    indices = [r["i"] for r in records]
    assert indices == list(range(len(indices)))  # A prefix of what was written ...
    assert last_acknowledged + 1 <= len(indices) <= last_acknowledged + 2  # ... less <= 1.
    for r in records:
        assert math.isnan(r["reward"]) if r["i"] % 7 == 0 else r["reward"] == r["i"] / 3

    # Reopening repairs any torn tail; appending continues cleanly.
    journal = JournalStorage(path)
    journal.append({"i": "after"})
    assert [r["i"] for r in journal.read()] == [*indices, "after"]
