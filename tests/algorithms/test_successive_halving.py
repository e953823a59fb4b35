"""Successive halving as a multi-fidelity schedule: promotions with η× the budget,
the budget reaching the trial (and the Trainer), resume, errors."""

from __future__ import annotations

import io
import random

import pytest
import torch

import symbolic_nas as sn
from symbolic_nas import algorithms
from symbolic_nas.storage.journal import JournalStorage
from symbolic_nas.storage.records import EventKind, event_of
from symbolic_nas.validation import InvalidParameterError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SPACE = {f"d{i}": sn.oneof([0, 1, 2, 3]) for i in range(4)}


def _reward(tokens: list[int]) -> float:
    return sum((i + 1) * t for i, t in enumerate(tokens)) / 30.0


def _sh(**kw) -> algorithms.Algorithm:
    kw.setdefault("min_budget", 1)
    kw.setdefault("max_budget", 9)
    kw.setdefault("reduction_factor", 3)
    kw.setdefault("seed", 0)
    algo = algorithms.get("successive_halving", **kw)
    algo.setup(sn.encode(SPACE))
    return algo


def test_the_top_third_of_a_rung_is_reproposed_with_three_times_the_budget():
    algo = _sh()
    first = [algo.propose() for _ in range(9)]
    assert [p.budget for p in first] == [1] * 9
    for p in first:
        algo.feedback(p, _reward(p.tokens))
    best = sorted(first, key=lambda p: (-_reward(p.tokens), p.id))[:3]
    promoted = [algo.propose() for _ in range(3)]
    assert [p.tokens for p in promoted] == [p.tokens for p in best]
    assert [p.budget for p in promoted] == [3, 3, 3]
    assert [p.meta["config"] for p in promoted] == [p.id for p in best]
    # A rung's top third is exhausted: the next one is new, at the lowest budget.
    assert algo.propose().budget == 1
    for p in promoted:
        algo.feedback(p, _reward(p.tokens) + 0.1)
    top = algo.propose()
    assert (top.tokens, top.budget, top.meta["rung"]) == (best[0].tokens, 9, 2)


def test_promotions_happen_as_results_arrive_in_any_order_and_skip_failures():
    algo = _sh(reduction_factor=2, max_budget=4)
    outstanding = [algo.propose() for _ in range(8)]  # many workers: nothing to promote yet
    assert all(p.budget == 1 for p in outstanding)
    random.Random(0).shuffle(outstanding)
    failed, good = outstanding[0], outstanding[1]
    algo.feedback(failed, None)  # counts in the rung, never promoted
    algo.feedback(good, float("nan"))
    assert algo.propose().budget == 1  # 2 results, both failed: no promotion
    algo.feedback(outstanding[2], 0.3)
    p = algo.propose()  # 3 results, floor(3 / 2) = 1: the only finite one goes up
    assert (p.tokens, p.budget) == (outstanding[2].tokens, 2)
    assert algo.propose().budget == 1  # it was promoted already


def test_floats_and_base_learning_follow_the_configuration():
    space = {"k": sn.oneof([1, 2]), "lr": sn.floatv(1e-4, 1e-1, scale="log")}
    algo = algorithms.get("successive_halving", base="evolution", max_budget=3, seed=1)
    algo.setup(sn.encode(space))
    assert algo.learns
    first = [algo.propose() for _ in range(3)]
    for i, p in enumerate(first):
        algo.feedback(p, float(i))
    promoted = algo.propose()
    assert promoted.floats == first[2].floats and promoted.tokens == first[2].tokens
    assert algo.base.num_feedback == 3  # the base heard its own three proposals


def test_hyperband_brackets_start_new_architectures_at_growing_budgets():
    algo = _sh(brackets=3)
    assert [algo.propose().budget for _ in range(6)] == [1, 3, 9, 1, 3, 9]


def test_state_dict_round_trip_continues_the_schedule():
    algo = _sh(seed=3)
    for _ in range(14):
        p = algo.propose()
        if p.id % 4 != 3:  # some stay outstanding
            algo.feedback(p, _reward(p.tokens))
    clone = _sh(seed=3)
    buffer = io.BytesIO()
    torch.save(algo.state_dict(), buffer)
    buffer.seek(0)
    clone.load_state_dict(torch.load(buffer, weights_only=True))
    for _ in range(10):
        a, b = algo.propose(), clone.propose()
        assert (a.tokens, a.meta) == (b.tokens, b.meta)
        algo.feedback(a, _reward(a.tokens))
        clone.feedback(b, _reward(b.tokens))
    other = _sh(seed=3, reduction_factor=2)
    with pytest.raises(ValueError, match="settings must match"):
        other.load_state_dict(algo.state_dict())


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"reduction_factor": 1}, r"`reduction_factor` must be .*> 1.*got 1"),
        ({"min_budget": 0}, r"`min_budget` must be .*> 0.*got 0"),
        ({"min_budget": 4, "max_budget": 2}, r"`max_budget` must be at least min_budget=4.*got 2"),
        ({"brackets": 4}, r"`brackets` must be at most the number of rungs \(3.*got 4"),
        ({"base": "randm"}, r"`base` must be a registered algorithm name.*got 'randm'"),
        ({"base": "successive_halving"}, r"`base` must be an algorithm other than"),
        ({"base": 3}, r"`base` must be"),
    ],
)
def test_settings_are_validated_with_the_rule_and_the_value(kw, match):
    with pytest.raises(InvalidParameterError, match=match):
        algorithms.get("successive_halving", **kw)


# ---------------------------------------------------------------------- in sn.search


@sn.evaluator(input="tokens")
def _budgeted(tokens: list[int]) -> dict[str, float]:
    trial = sn.current_trial()
    assert trial is not None and trial.budget is not None
    return {"reward": _reward(tokens) * trial.budget, "seen_budget": trial.budget}


def _search(**kw):
    kw.setdefault("algorithm", "successive_halving")
    kw.setdefault("num_trials", 16)
    kw.setdefault("seed", 0)
    kw.setdefault("progress", False)
    kw.setdefault("tensorboard", False)
    return sn.search(SPACE, kw.pop("evaluate", _budgeted), **kw)


def test_search_hands_each_trial_its_proposals_budget_and_shows_it(tmp_path):
    result = _search(run_dir=tmp_path / "run")
    budgets = [t.metrics["budget"] for t in result.trials]
    assert [t.metrics["seen_budget"] for t in result.trials] == budgets
    assert set(budgets) == {1, 3, 9}  # 16 trials reach the top rung
    records = JournalStorage(tmp_path / "run" / "journal.jsonl").read()
    journaled = [r["meta"]["budget"] for r in records if event_of(r) is EventKind.PROPOSE]
    assert journaled == budgets
    loaded = sn.load_run(tmp_path / "run")
    assert [t.metrics["budget"] for t in loaded.trials] == budgets
    from symbolic_nas.cli_report import format_report

    assert "budget" in format_report(str(tmp_path / "run"))


def test_resume_and_replay_reproduce_the_schedule(tmp_path):
    whole = _search(num_trials=20)
    run_dir = tmp_path / "run"
    _search(num_trials=7, run_dir=run_dir)
    resumed = _search(num_trials=20, run_dir=run_dir, resume=True)
    key = [(t.tokens, t.metrics["budget"], t.reward) for t in whole.trials]
    assert [(t.tokens, t.metrics["budget"], t.reward) for t in resumed.trials] == key
    # The journal alone (no checkpoint) replays the same schedule.
    run_dir2 = tmp_path / "run2"
    _search(num_trials=11, run_dir=run_dir2, checkpoint_interval=1e9)
    (run_dir2 / "checkpoint.pt").unlink()
    replayed = _search(num_trials=20, run_dir=run_dir2, resume=True)
    assert [(t.tokens, t.metrics["budget"], t.reward) for t in replayed.trials] == key


def test_a_pruner_and_a_budget_schedule_are_refused_together():
    with pytest.raises(
        InvalidParameterError, match=r"`pruner` must be None with algorithm 'successive_halving'"
    ):
        _search(pruner="asha")


def _pairs():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (96,), generator=g)
    x = torch.randn(96, 4, generator=g) + torch.nn.functional.one_hot(y, 4).float() * 2
    return (x[:64], y[:64]), (x[64:], y[64:])


def test_the_trainer_trains_the_proposals_budget_epochs():
    trainer = sn.Trainer(data=_pairs, epochs=7, batch_size=32, seed=0)

    def evaluate(arch):
        w = arch["width"]
        return trainer(
            torch.nn.Sequential(torch.nn.Linear(4, w), torch.nn.ReLU(), torch.nn.Linear(w, 3))
        )

    sh = algorithms.get("successive_halving", min_budget=1, max_budget=2, reduction_factor=2)
    result = sn.search(
        {"width": sn.oneof([4, 8])}, evaluate, algorithm=sh, num_trials=3, seed=0, progress=False,
        tensorboard=False,
    )  # fmt: skip
    assert [t.metrics["budget"] for t in result.trials] == [1, 1, 2]
    for trial in result.trials:
        assert trial.metrics["epochs"] == trial.metrics["budget"]
        assert len(trial.metrics["val_accuracy"]) == trial.metrics["budget"]
    assert result.trials[2].tokens == max(result.trials[:2], key=lambda t: t.reward).tokens


def test_budgets_reach_process_workers_and_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from symbolic_nas.review.tensorboard import TRIAL_PREFIX

    sh = algorithms.get("successive_halving", min_budget=1, max_budget=4, reduction_factor=2)
    result = _search(
        algorithm=sh, num_trials=8, workers=2, executor="process", run_dir=tmp_path / "run",
        tensorboard=True,
    )  # fmt: skip
    budgets = [t.metrics["budget"] for t in result.trials]
    assert [t.metrics["seen_budget"] for t in result.trials] == budgets
    assert 2 in budgets  # promotions happened while two trials were outstanding
    top = max(result.trials, key=lambda t: t.metrics["budget"])
    events = EventAccumulator(
        str(tmp_path / "run" / "tensorboard" / "trials" / f"{top.id:05d}"),
        size_guidance={"scalars": 0},
    )
    events.Reload()
    (event,) = events.Scalars(TRIAL_PREFIX + "budget")
    assert event.value == top.metrics["budget"]
