"""The shape of journal records: the fields each known kind must carry, checked.

A journal line can be valid JSON and still be no record the tuner wrote (edited by
hand, or written by another program). :func:`check_records` finds the first record
of a known kind (:class:`~symbolic_nas.storage.records.EventKind`) whose fields have
the wrong types and names the file and line, before replay or a report trips over
it. Records of unknown kinds are left alone (later versions may add kinds).
"""

from __future__ import annotations

import numbers
import os
import pathlib
from collections.abc import Mapping
from typing import Any

from symbolic_nas.storage.records import EventKind, event_of

__all__ = ["check_records", "record_problem"]

_ENDED = ("completed", "failed", "pruned")
_FLOATS_RULE = "a dict of decision indices (strings) to numbers"


def _id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _tokens(value: Any) -> bool:
    return isinstance(value, list) and all(_id(t) for t in value)


def _number(value: Any) -> bool:
    return value is None or (isinstance(value, numbers.Real) and not isinstance(value, bool))


def _step(value: Any) -> bool:
    return _number(value) and value is not None and value >= 0


def _dict(value: Any) -> bool:
    return isinstance(value, Mapping)


def _floats(value: Any) -> bool:
    """Exact float values as journaled: ``{"<decision index>": number}``."""
    return isinstance(value, Mapping) and all(
        isinstance(k, str) and k.isdigit() and _number(v) and v is not None
        for k, v in value.items()
    )


def _field_problem(
    record: Mapping[str, Any], key: str, ok: Any, rule: str, prefix: str = ""
) -> str | None:
    if key not in record:
        return f"`{prefix}{key}` is missing"
    if not ok(record[key]):
        text = repr(record[key])
        text = text if len(text) <= 80 else text[:77] + "..."
        return f"`{prefix}{key}` must be {rule}, but got {text}"
    return None


def record_problem(record: Mapping[str, Any]) -> str | None:
    """What is wrong with the fields of a record of a known kind, or None.

    Only what the reader relies on is checked: trial ids, tokens, an ``end``
    record's trial and feedback. Records of unknown kinds are never a problem.

    Example:
        >>> record_problem({"event": "end", "trial": 5})
        '`trial` must be a trial record (a dict), but got 5'
        >>> record_problem({"event": "propose", "trial": 0, "tokens": [1, 2]}) is None
        True
    """
    event = event_of(record)
    checks: list[tuple[Mapping[str, Any], str, Any, str, str]] = []
    if event in (EventKind.PROPOSE, EventKind.START, EventKind.LOST, EventKind.REPORT):
        checks.append((record, "trial", _id, "an int >= 0", ""))
    if event is EventKind.PROPOSE:
        checks.append((record, "tokens", _tokens, "a list of ints >= 0", ""))
        if "floats" in record:
            checks.append((record, "floats", _floats, _FLOATS_RULE, ""))
    if event is EventKind.REPORT:
        checks.append((record, "step", _step, "a number >= 0", ""))
        checks.append((record, "value", _number, "a number", ""))
        checks.append((record, "pruned", lambda v: isinstance(v, bool), "a bool", ""))
    if event is EventKind.END:
        checks.append((record, "trial", _dict, "a trial record (a dict)", ""))
        if "feedback" in record:
            checks.append((record, "feedback", _number, "a number or None", ""))
    for fields, key, ok, rule, prefix in checks:
        problem = _field_problem(fields, key, ok, rule, prefix)
        if problem:
            return problem
    if event is EventKind.END:
        trial = record["trial"]
        for key, ok, rule in (
            ("id", _id, "an int >= 0"),
            ("tokens", _tokens, "a list of ints >= 0"),
            ("status", lambda v: v in _ENDED, f"one of {list(_ENDED)}"),
        ):
            problem = _field_problem(trial, key, ok, rule, "trial.")
            if problem:
                return problem
        if "reward" in trial and not _number(trial["reward"]):
            return _field_problem(trial, "reward", _number, "a number or None", "trial.")
        if "floats" in trial and not _floats(trial["floats"]):
            return _field_problem(trial, "floats", _floats, _FLOATS_RULE, "trial.")
    return None


def check_records(records: list[dict[str, Any]], path: str | os.PathLike[str]) -> None:
    """Raises ``ValueError`` naming the file and line of the first record of a wrong shape.

    Args:
        records: The records read from the journal file ``path``, in order.
        path: The journal file (its lines are counted only when a record is wrong).

    Example:
        >>> check_records([{"event": "propose", "trial": 0, "tokens": [1]}], "journal.jsonl")
        >>> check_records([{"event": "propose", "trial": "0", "tokens": [1]}], "journal.jsonl")
        Traceback (most recent call last):
        ...
        ValueError: journal 'journal.jsonl' has a record of the wrong shape at line 1: ...
    """
    for index, record in enumerate(records):
        problem = record_problem(record)
        if problem is not None:
            raise ValueError(
                f"journal {os.fspath(path)!r} has a record of the wrong shape at line "
                f"{_line_of(path, index)}: {problem}"
            )


def _line_of(path: str | os.PathLike[str], index: int) -> int:
    """The line number of the ``index``-th record (blank lines hold no record)."""
    try:
        lines = pathlib.Path(path).read_bytes().split(b"\n")
    except OSError:
        return index + 1
    seen = -1
    for number, line in enumerate(lines, start=1):
        if line.strip():
            seen += 1
            if seen == index:
                return number
    return index + 1
