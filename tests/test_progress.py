"""Tests for symbolic_nas.review.progress: counts, postfix, resume, TTY-dependent default."""

from __future__ import annotations

import io
import re

import pytest

import symbolic_nas as sn
from symbolic_nas import algorithms
from symbolic_nas.review.progress import ProgressCallback
from symbolic_nas.storage.trial import SearchResult, Trial, TrialStatus
from symbolic_nas.tuner.callbacks import SearchContext
from tests.helpers.fake_search import conditional_space, fake_search


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def codec():
    return sn.encode(conditional_space())


def _last_line(text: str) -> str:
    return re.split(r"[\r\n]", text.rstrip())[-1]


def test_counts_trials_and_shows_best_and_failures(codec):
    out = io.StringIO()
    bar = ProgressCallback(total=12, disable=False, file=out)
    context = fake_search([bar], codec=codec, num_trials=12, fail_every=4)
    best = context.best.reward
    line = _last_line(out.getvalue())
    assert line.startswith("search: 100%")
    assert "12/12" in line
    assert f"best={best:.4g}, failed=3" in line
    assert bar.bar is None  # closed at the end


def test_postfix_before_any_completed_trial():
    codec = sn.encode({"k": sn.oneof([3, 5])})
    out = io.StringIO()
    bar = ProgressCallback(disable=False, file=out)  # total from the context
    context = SearchContext(codec=codec, algorithm=algorithms.get("random"), num_trials=4)
    bar.on_search_start(context)
    assert bar.bar.total == 4
    bar.on_trial_end(Trial(0, [0], status=TrialStatus.FAILED, error="x"), context)
    bar.on_search_end(SearchResult([]), context)
    line = _last_line(out.getvalue())
    assert "1/4" in line and "best=-, failed=1" in line


def test_resume_starts_at_the_finished_trials(codec):
    first = fake_search([], codec=codec, num_trials=5, fail_every=2)
    out = io.StringIO()
    bar = ProgressCallback(total=9, disable=False, file=out)
    fake_search([bar], codec=codec, num_trials=9, previous=first.trials, fail_every=2)
    text = out.getvalue()
    first_drawing = next(line for line in re.split(r"[\r\n]", text) if line)
    assert "5/9" in first_drawing and "failed=2" in first_drawing
    line = _last_line(text)
    assert "9/9" in line and "failed=4" in line


def test_default_shows_the_bar_only_on_a_terminal(codec):
    piped, terminal = io.StringIO(), _Terminal()
    fake_search([ProgressCallback(file=piped)], codec=codec, num_trials=3)
    fake_search([ProgressCallback(file=terminal)], codec=codec, num_trials=3)
    assert piped.getvalue() == ""
    assert "3/3" in terminal.getvalue()
    hidden = _Terminal()
    fake_search([ProgressCallback(disable=True, file=hidden)], codec=codec, num_trials=3)
    assert hidden.getvalue() == ""


def test_completed_trial_without_finite_reward_is_not_best(codec):
    out = io.StringIO()
    bar = ProgressCallback(total=2, disable=False, file=out)
    context = SearchContext(codec=codec, algorithm=algorithms.get("random"), num_trials=2)
    bar.on_search_start(context)
    bar.on_trial_end(Trial(0, [0], status=TrialStatus.COMPLETED, reward=float("nan")), context)
    bar.on_trial_end(Trial(1, [0], status=TrialStatus.COMPLETED, reward=0.25), context)
    bar.on_search_end(SearchResult([]), context)
    assert "best=0.25, failed=0" in _last_line(out.getvalue())


def test_hooks_need_on_search_start_first(codec):
    context = SearchContext(codec=codec, algorithm=algorithms.get("random"), num_trials=1)
    with pytest.raises(RuntimeError, match="on_search_start must be called first"):
        ProgressCallback(disable=True).on_trial_end(Trial(0, [0]), context)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"total": -1}, "`total` must be an int >= 0 or None, but got -1"),
        ({"total": 2.5}, "`total` must be an int >= 0 or None, but got 2.5"),
        ({"total": True}, "`total` must be an int >= 0 or None, but got True"),
        ({"disable": "yes"}, "`disable` must be a bool or None, but got 'yes'"),
        ({"desc": 3}, "`desc` must be a str, but got 3"),
        ({"leave": None}, "`leave` must be a bool, but got None"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ProgressCallback(**kwargs)
