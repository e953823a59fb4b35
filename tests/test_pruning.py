"""Intermediate reports and early stopping: sn.report, pruners, the pruned status, resume."""

from __future__ import annotations

import re

import pytest

import symbolic_nas as sn
from symbolic_nas.algorithms.random_search import RandomSearch
from symbolic_nas.storage.journal import JournalStorage
from symbolic_nas.storage.record_shapes import record_problem
from symbolic_nas.storage.records import EventKind, event_of
from symbolic_nas.tuner.callbacks import Callback
from symbolic_nas.tuner.pruners import ASHAPruner, HyperbandPruner, MedianPruner
from symbolic_nas.validation import InvalidParameterError
from tests.helpers import pruning as p

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _search(**kw):
    kw.setdefault("algorithm", "random")
    kw.setdefault("num_trials", 16)
    kw.setdefault("seed", 0)
    kw.setdefault("progress", False)
    evaluate = kw.pop("evaluate", p.reporting_reward)
    return sn.search(p.curve_space(), evaluate, **kw)


# ---------------------------------------------------------------------- pruners


def test_asha_keeps_the_top_fraction_of_each_rung():
    pruner = ASHAPruner(reduction_factor=2, min_resource=1, max_resource=8)
    assert pruner.rungs(8) == [1, 2, 4]
    assert pruner.budget(0) == 8
    # Rung 0: the first is kept, a worse second is cut (fewer than eta recorded: best only).
    assert pruner.report(0, 1, 0.5) is False
    assert pruner.report(1, 1, 0.4) is True
    # With 4 recorded, the top 2 go on: 0.45 ranks third of (0.5, 0.4, 0.9, 0.45).
    assert pruner.report(2, 1, 0.9) is False
    assert pruner.report(3, 1, 0.45) is True
    # A trial is judged once per rung, when it first reaches it.
    assert pruner.report(0, 1.5, 0.1) is False
    assert pruner.report(0, 2, 0.6) is False
    assert pruner.report(2, 2, 0.5) is True  # below 0.6 at rung 1 (fewer than eta: best only)
    assert pruner.report(0, 8, 0.1) is False  # No rung at max_resource.


def test_median_rule_compares_with_completed_trials_running_averages():
    pruner = MedianPruner(min_trials=3)
    for trial, values in enumerate([[0.2, 0.4], [0.4, 0.6], [0.6, 0.8]]):
        for step, value in enumerate(values, start=1):
            assert pruner.report(trial, step, value) is False  # fewer than 3 completed
        pruner.finish(trial, "completed")
    pruner.finish(9, "pruned")  # Not counted.
    assert pruner.completed == [0, 1, 2]
    # Running averages at step 2: 0.3, 0.5, 0.7 -> median 0.5; at step 1: 0.4.
    assert pruner.report(3, 1, 0.39) is True
    assert pruner.report(4, 1, 0.41) is False
    assert pruner.report(4, 2, 0.45) is True  # best so far 0.45 < median 0.5
    assert pruner.report(5, 1, 0.41) is False
    assert pruner.report(5, 2, 0.55) is False  # best so far 0.55 >= 0.5
    assert MedianPruner(min_trials=1, warmup_steps=3).report(0, 1, 0.0) is False


def test_hyperband_spreads_trials_over_brackets_with_growing_first_rungs():
    pruner = HyperbandPruner(max_resource=9, reduction_factor=3)
    assert [b.min_resource for b in pruner.brackets] == [1, 3, 9]
    assert pruner.counts == [9, 5, 3]
    assert [pruner.bracket(i) for i in (0, 8, 9, 13, 14, 16, 17)] == [0, 0, 1, 1, 2, 2, 0]
    assert pruner.budget(0) == 9
    # The last bracket never stops; brackets do not compete with one another.
    assert pruner.report(14, 1, 0.0) is False and pruner.report(14, 8, 0.0) is False
    assert pruner.report(0, 1, 0.5) is False
    assert pruner.report(1, 1, 0.1) is True
    assert pruner.report(9, 1, 0.1) is False  # bracket 1: first rung at 3
    assert HyperbandPruner().budget(0) is None  # no max_resource: no budget


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: ASHAPruner(reduction_factor=1), r"`reduction_factor` must be .*> 1.*got 1"),
        (lambda: ASHAPruner(reduction_factor=0.5), r"`reduction_factor`.*got 0.5"),
        (lambda: ASHAPruner(min_resource=0), r"`min_resource` must be .*> 0.*got 0"),
        (lambda: ASHAPruner(min_resource=2, max_resource=1), r"`max_resource` must be at least"),
        (lambda: HyperbandPruner(reduction_factor=1.0), r"`reduction_factor`"),
        (lambda: MedianPruner(min_trials=0), r"`min_trials` must be"),
        (lambda: ASHAPruner(3), r"positional"),
    ],
)
def test_pruner_settings_are_validated(make, match):
    with pytest.raises((InvalidParameterError, TypeError), match=match):
        make()


def test_pruner_names_and_options_are_validated_up_front():
    assert sn.pruners.available() == ["asha", "hyperband", "median"]
    with pytest.raises(InvalidParameterError, match=r"`pruner` must be one of.*got 'asah'"):
        _search(pruner="asah")
    with pytest.raises(InvalidParameterError, match=r"`pruner` must be"):
        _search(pruner=3)
    with pytest.raises(InvalidParameterError, match=r"`pruned_reward` must be"):
        _search(pruner="asha", pruned_reward="worst")
    with pytest.raises(InvalidParameterError, match=r"`pruned_reward` must be"):
        _search(pruner="asha", pruned_reward=float("nan"))


# ---------------------------------------------------------------------- reports


def test_report_outside_a_trial_and_after_it_ended_raise():
    with pytest.raises(RuntimeError, match="`report` must be called while a trial runs"):
        sn.report(1, 0.5)
    kept = []

    def evaluate(arch):
        kept.append(sn.current_trial())
        sn.report(1, 0.5)
        return 0.5

    sn.search({"k": sn.oneof([1, 2])}, evaluate, algorithm="random", num_trials=1, seed=0)
    assert sn.current_trial() is None
    with pytest.raises(RuntimeError, match="trial 0 has ended"):
        kept[0].report(2, 0.6)


@pytest.mark.parametrize(
    ("step", "value", "match"),
    [
        (-1, 0.5, r"`step` must be a number >= 0, but got -1"),
        (2, float("nan"), r"`value` must be a finite number, but got nan"),
        (2, "high", r"`value` must be a finite number, but got 'high'"),
        (0, 0.5, r"`step` must grow from report to report, but got 0 after 1"),
    ],
)
def test_bad_reports_fail_the_trial_with_the_rule(step, value, match):
    def evaluate(arch):
        sn.report(1, 0.1)
        sn.report(step, value)
        return 1.0

    result = sn.search({"k": sn.oneof([1])}, evaluate, algorithm="random", num_trials=1)
    assert result.trials[0].status == "failed"
    assert re.search(match, result.trials[0].error), result.trials[0].error


def test_without_a_pruner_reports_are_journaled_and_never_stop(tmp_path):
    result = _search(run_dir=tmp_path / "run", num_trials=5, tensorboard=False)
    assert [t.status for t in result.trials] == ["completed"] * 5
    records = JournalStorage(tmp_path / "run" / "journal.jsonl").read()
    reports = [r for r in records if event_of(r) is EventKind.REPORT]
    assert len(reports) == 5 * p.STEPS
    assert all(record_problem(r) is None and r["pruned"] is False for r in reports)
    first = next(r for r in reports if r["trial"] == 0)
    tokens = result.trials[0].tokens
    assert (first["step"], first["value"]) == (1, p.curve(tokens, 1))
    assert first["metrics"] == {"half": p.curve(tokens, 1) / 2}


@pytest.mark.parametrize("pruner", ["median", "asha", "hyperband"])
def test_each_named_pruner_stops_trials_which_keep_their_last_report(pruner):
    kw = {"pruner": pruner}
    if pruner == "median":
        kw["pruner"] = MedianPruner(min_trials=3)
    result = _search(num_trials=24, **kw)
    pruned = result.pruned
    assert pruned, f"{pruner} pruned nothing"
    assert set(result.trials) == set(result.completed) | set(pruned)
    for trial in pruned:
        assert trial.reward is None
        step = trial.metrics["step"]
        assert 1 <= step < p.STEPS
        assert trial.metrics["value"] == p.curve(trial.tokens, step)
        assert trial.metrics["half"] == trial.metrics["value"] / 2
    assert result.best.status == "completed"
    # The same search without a pruner finds the same trials, all completed.
    assert [t.tokens for t in _search(num_trials=24).trials] == [t.tokens for t in result.trials]


class _Feedback(RandomSearch):
    """Random search that records what it is told."""

    told: list

    def feedback(self, proposal, reward):
        self.told.append((proposal.id, reward))
        return super().feedback(proposal, reward)


@pytest.mark.parametrize(("policy", "expected"), [("last", "value"), (None, None), (-1.0, -1.0)])
def test_the_pruned_reward_policy_decides_what_the_algorithm_is_told(policy, expected):
    algorithm = _Feedback(seed=0)
    algorithm.told = []
    result = _search(algorithm=algorithm, pruner=p.asha(), pruned_reward=policy, num_trials=12)
    told = dict(algorithm.told)
    assert result.pruned
    for trial in result.trials:
        if trial.status == "completed":
            assert told[trial.id] == trial.reward
        elif expected == "value":
            assert told[trial.id] == trial.metrics["value"]
        else:
            assert told[trial.id] == expected


def test_an_evaluator_that_catches_trial_pruned_still_ends_pruned():
    result = _search(evaluate=p.catching_reward, pruner=p.asha(), num_trials=12)
    assert result.pruned
    assert all(t.reward != 123.0 for t in result.trials)


def test_a_user_training_loop_reports_and_is_pruned():
    def evaluate(arch):
        trial = sn.current_trial()
        assert trial is not None and trial.budget == 4
        value = 0.0
        for epoch in range(1, 5):
            value = arch["rate"] * epoch
            sn.report(epoch, value)
        return value

    space = {"rate": sn.oneof([0.1, 0.2, 0.3, 0.4])}
    result = sn.search(space, evaluate, algorithm="random", num_trials=8, pruner=p.asha())
    assert result.pruned and result.best.reward == pytest.approx(1.6)


def test_reports_reach_callbacks_with_the_decision():
    seen = []

    class Spy(Callback):
        def on_trial_report(self, trial, report, pruned, context):
            seen.append((trial.id, report.step, pruned, trial.status))

    result = _search(pruner=p.asha(), num_trials=10, callbacks=[Spy()])
    for trial in result.pruned:
        assert (trial.id, trial.metrics["step"], True, "running") in seen
    assert all(status == "running" for *_, status in seen)


def test_process_workers_report_and_are_pruned_as_inline():
    inline = _search(pruner=p.asha(), num_trials=12, executor="inline")
    process = _search(pruner=p.asha(), num_trials=12, executor="process", workers=2)
    assert process.pruned and inline.pruned
    assert all(t.worker.startswith("process-") for t in process.trials)
    for trial in process.pruned:
        assert trial.metrics["value"] == p.curve(trial.tokens, trial.metrics["step"])


def test_resume_rebuilds_the_pruner_from_the_journal(tmp_path):
    """A run stopped after 7 trials and resumed to 20 decides as one uninterrupted run."""
    whole = _search(pruner=p.asha(), num_trials=20)
    run_dir = tmp_path / "run"
    _search(pruner=p.asha(), num_trials=7, run_dir=run_dir, tensorboard=False)
    resumed = _search(
        pruner=p.asha(), num_trials=20, run_dir=run_dir, resume=True, tensorboard=False
    )
    assert [(t.tokens, t.status, t.reward) for t in resumed.trials] == [
        (t.tokens, t.status, t.reward) for t in whole.trials
    ]
    # Without the rebuild, the resumed pruner would judge trial 7 onwards against nothing.
    fresh = _search(pruner=p.asha(), num_trials=13)
    assert [t.status for t in fresh.trials] != [t.status for t in resumed.trials[7:]]


def test_tensorboard_shows_each_trials_reports(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = _search(pruner=p.asha(), num_trials=6, run_dir=tmp_path / "run")
    for trial in result.trials[:3]:
        path = tmp_path / "run" / "tensorboard" / "trials" / f"{trial.id:05d}"
        events = EventAccumulator(str(path), size_guidance={"scalars": 0})
        events.Reload()
        values = [(e.step, e.value) for e in events.Scalars("report/value")]
        steps = trial.metrics["step"] if trial.status == "pruned" else p.STEPS
        assert [s for s, _ in values] == list(range(1, steps + 1))
        assert values[-1][1] == pytest.approx(p.curve(trial.tokens, steps))


def test_a_pruned_run_reads_back_and_reports_its_pruned_trials(tmp_path):
    from symbolic_nas.cli_output import format_summary

    result = _search(pruner=p.asha(), num_trials=8, run_dir=tmp_path / "run", tensorboard=False)
    loaded = sn.load_run(tmp_path / "run")
    assert [(t.status, t.metrics) for t in loaded.trials] == [
        (t.status, t.metrics) for t in result.trials
    ]
    assert f", {len(result.pruned)} pruned" in format_summary(loaded).splitlines()[0]
