"""Exact (unbinned) float values (issue 14, item 5): ``random``, ``evolution`` and
``optuna`` propose continuous values beside the tokens; token-based learners keep bins;
the values reach the built object, the journal, ``load_run``, resume, trials and
TensorBoard's HParams."""

from __future__ import annotations

import json
import math
import os
import random
from typing import Any

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata
from torch import nn

import symbolic_nas as sn
from symbolic_nas import algorithms
from symbolic_nas.algorithms.mutation import mutate_with_floats
from symbolic_nas.review.tensorboard import trial_run
from symbolic_nas.space.floats import perturb_float, snap_floats
from symbolic_nas.space.walker import nearest_bin
from symbolic_nas.storage import ResumeError
from symbolic_nas.storage.record_shapes import record_problem
from symbolic_nas.storage.trial import Trial
from symbolic_nas.training import Trainer


def _space() -> dict[str, Any]:
    return {
        "act": sn.oneof(["relu", "gelu", "tanh"]),
        "lr": sn.floatv(1e-4, 1e-1, scale="log"),
        "dropout": sn.floatv(0.0, 0.5, hints={"bins": 3}),
    }


def _proposals(name: str, n: int, **kwargs: Any) -> tuple[sn.Codec, list[Any]]:
    codec = sn.encode(_space())
    algo = algorithms.get(name, seed=0, **kwargs)
    algo.setup(codec, budget=n)
    made = []
    for _ in range(n):
        p = algo.propose()
        algo.feedback(p, float(p.tokens[0]))
        made.append(p)
    return codec, made


def _check_exact(codec: sn.Codec, proposals: list[Any]) -> None:
    lr, dropout = codec.decisions[1], codec.decisions[2]
    for p in proposals:
        assert sorted(p.floats) == [1, 2]
        assert p.floats[1] not in lr.values and p.floats[2] not in dropout.values
        assert 1e-4 <= p.floats[1] <= 1e-1 and 0.0 <= p.floats[2] <= 0.5
        # The token is the nearest bin: token-based readers see that bin.
        assert p.tokens[1] == nearest_bin(lr, p.floats[1])
        assert p.tokens[2] == nearest_bin(dropout, p.floats[2])
        built = codec.materialize(p.tokens, p.floats)
        assert built["lr"] == p.floats[1] and built["dropout"] == p.floats[2]
        assert codec.decode(p.tokens, p.floats)["lr"] == p.floats[1]
        # The DNA holds the exact values, and gives them back.
        assert codec.to_tokens_and_floats(p.dna) == (p.tokens, p.floats)
        assert sn.materialize(codec, p.dna)["lr"] == p.floats[1]


def test_random_search_draws_exact_floats_log_uniformly() -> None:
    codec, made = _proposals("random", 400)
    _check_exact(codec, made)
    logs = [math.log10(p.floats[1]) for p in made]  # log-uniform in [-4, -1]
    assert sum(v < -2.5 for v in logs) == pytest.approx(200, abs=40)
    assert sum(p.floats[2] < 0.25 for p in made) == pytest.approx(200, abs=40)  # uniform


def test_evolution_mutates_exact_floats() -> None:
    codec, made = _proposals("evolution", 60, population_size=4, tournament_size=2)
    _check_exact(codec, made)
    by_id = {p.id: p for p in made}
    moved = 0
    for child in made[4:]:
        parent = by_id[child.meta["parent"]]
        changed = [d for d in (1, 2) if child.floats[d] != parent.floats[d]]
        changed += [0] if child.tokens[0] != parent.tokens[0] else []
        assert len(changed) == 1  # one decision changes, a float by a step
        if changed[0] == 1:
            moved += 1
            step = abs(math.log10(child.floats[1]) - math.log10(parent.floats[1]))
            assert 0 < step < 1.5  # a step of ~0.3 decades (0.1 of 3), not a resample
    assert moved > 5


def test_perturbation_stays_in_range_and_reflects_at_the_ends() -> None:
    dec = sn.encode({"p": sn.floatv(0.0, 1.0)}).decisions[0]
    rng = random.Random(0)
    values = [perturb_float(dec, 1.0, rng) for _ in range(200)]
    assert all(0.0 <= v < 1.0 for v in values)  # never stuck at the end
    rlog = sn.encode({"p": sn.floatv(0.1, 0.9, scale="rlog")}).decisions[0]
    assert all(0.1 <= perturb_float(rlog, 0.9, rng) <= 0.9 for _ in range(100))
    tokens, floats = mutate_with_floats(
        sn.encode({"p": sn.floatv(0.0, 1.0)}), [0], {0: 0.0}, random.Random(1)
    )
    assert floats[0] > 0.0 and tokens == [nearest_bin(dec, floats[0])]


def test_unbinned_floats_off_and_token_based_learners_keep_bins() -> None:
    for name, kwargs in [
        ("random", {"unbinned_floats": False}),
        ("evolution", {"unbinned_floats": False, "population_size": 4, "tournament_size": 2}),
        ("reinforce", {}),
        ("q_learning", {}),
    ]:
        codec, made = _proposals(name, 12, **kwargs)
        for p in made:
            assert p.floats == {}, name
            assert codec.materialize(p.tokens)["lr"] in codec.decisions[1].values
    assert repr(algorithms.get("random", unbinned_floats=False)) == (
        "RandomSearch(unbinned_floats=False, seed=0)"
    )
    with pytest.raises(ValueError, match="`unbinned_floats` must be"):
        algorithms.get("evolution", unbinned_floats="yes")


def test_optuna_proposals_use_the_sampled_float() -> None:
    pytest.importorskip("optuna")
    codec, made = _proposals("optuna", 6, sampler="random")
    for p in made:
        assert p.floats[1] == p.meta["params"]["lr"]
        assert codec.materialize(p.tokens, p.floats)["lr"] == p.meta["params"]["lr"]


def test_floats_are_checked_against_the_tokens() -> None:
    codec = sn.encode(_space())
    assert snap_floats(codec, [0, 0, 0], {1: 0.1}) == ([0, 9, 0], {1: 0.1})
    with pytest.raises(ValueError, match="active float decisions"):
        codec.materialize([0, 9, 0], {0: 0.5})
    with pytest.raises(ValueError, match=r"`floats\[1\]` must be a number in \[0.0001, 0.1\]"):
        codec.materialize([0, 9, 0], {1: 0.5})
    with pytest.raises(ValueError, match="must be the bin nearest its value"):
        codec.materialize([0, 0, 0], {1: 0.1})


def _data() -> tuple[Any, ...]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=generator)
    y = (x[:, 0] > 0).long()
    return (x[:32], y[:32]), (x[32:48], y[32:48]), (x[48:], y[48:])


Linear = sn.symbolize(nn.Linear)  # built fresh per trial, seeded with the trial's seed


def _trainer_space() -> dict[str, Any]:
    return {
        "model": sn.oneof([Linear(4, 2), Linear(4, 2, bias=False)]),
        "lr": sn.floatv(1e-4, 1e-1, scale="log"),
    }


def _search(run_dir: Any, num_trials: int, **kwargs: Any) -> sn.SearchResult:
    algorithm = algorithms.get("evolution", population_size=2, tournament_size=2, seed=0)
    return sn.search(
        _trainer_space(),
        Trainer(data=_data, epochs=1, batch_size=16, seed=0),
        algorithm=algorithm,
        num_trials=num_trials,
        run_dir=run_dir,
        progress=False,
        checkpoint_interval=0,
        **kwargs,
    )


def test_exact_value_reaches_the_trainer_journal_load_run_and_tensorboard(tmp_path) -> None:
    run_dir = tmp_path / "run"
    result = _search(run_dir, 4, tensorboard=True)
    codec = result.codec
    assert codec is not None and codec.space_size == math.inf
    lr = codec.decisions[-1]
    assert lr.name == "lr"
    for trial in result.trials:
        value = trial.floats[lr.index]
        assert value not in lr.values
        assert trial.metrics["hparams"]["lr"] == value  # what the trainer trained with
        assert trial.choice_labels()["lr"] == f"{value:.6g}"
        assert codec.to_tokens_and_floats(trial.dna)[1] == {lr.index: value}
    # The journal holds the exact values (propose and end records).
    records = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    proposed = {r["trial"]: r["floats"] for r in records if r["event"] == "propose"}
    ended = {r["trial"]["id"]: r["trial"]["floats"] for r in records if r["event"] == "end"}
    expected = {t.id: {str(lr.index): t.floats[lr.index]} for t in result.trials}
    assert proposed == expected and ended == expected
    # load_run gives them back; with the space, the table holds the numbers.
    loaded = sn.load_run(run_dir)
    assert [t.floats for t in loaded.trials] == [t.floats for t in result.trials]
    assert [t.choice_labels()["lr"] for t in loaded.trials] == [
        f"{t.floats[lr.index]:.6g}" for t in result.trials
    ]
    rows = sn.load_run(run_dir, _trainer_space()).to_records()
    assert [row["lr"] for row in rows] == [t.floats[lr.index] for t in result.trials]
    # TensorBoard's HParams: the exact number and its log10 column.
    for trial in result.trials:
        folder = os.path.join(run_dir, "tensorboard", trial_run(trial.id))
        accumulator = EventAccumulator(folder, size_guidance={"tensors": 0})
        accumulator.Reload()
        content = accumulator.SummaryMetadata(
            hparams_metadata.SESSION_START_INFO_TAG
        ).plugin_data.content
        start = hparams_metadata.parse_session_start_info_plugin_data(content)
        value = trial.floats[lr.index]
        assert start.hparams["lr"].number_value == pytest.approx(value, rel=1e-12)
        assert start.hparams["log10(lr)"].number_value == pytest.approx(math.log10(value))


@pytest.mark.parametrize("checkpoint", [True, False])
def test_resume_reproduces_the_exact_values(tmp_path, checkpoint) -> None:
    whole = _search(tmp_path / "whole", 7, tensorboard=False)
    lr = sn.encode(_trainer_space()).decisions[-1]
    assert all(t.floats[lr.index] not in lr.values for t in whole.trials)
    _search(tmp_path / "split", 3, tensorboard=False)
    if not checkpoint:  # the journal alone: replay from the start
        (tmp_path / "split" / "checkpoint.pt").unlink()
    resumed = _search(tmp_path / "split", 7, tensorboard=False, resume=True)
    assert [t.floats for t in resumed.trials] == [t.floats for t in whole.trials]
    assert [t.tokens for t in resumed.trials] == [t.tokens for t in whole.trials]
    assert [t.metrics["hparams"]["lr"] for t in resumed.trials] == [
        t.floats[lr.index] for t in whole.trials
    ]


def test_journals_without_floats_still_load_and_bad_floats_are_named() -> None:
    old = {"id": 0, "tokens": [1, 3], "status": "completed", "reward": 0.5}
    trial = Trial.from_record(old, sn.encode(_trainer_space()))
    assert trial.floats == {} and "floats" not in trial.to_record()
    assert trial.choice_labels()["lr"] == sn.encode(_trainer_space()).decisions[-1].labels[3]
    assert (
        record_problem({"event": "propose", "trial": 0, "tokens": [1], "floats": {"1": 0.1}})
        is None
    )
    problem = record_problem({"event": "propose", "trial": 0, "tokens": [1], "floats": [0.1]})
    assert problem is not None and "`floats` must be a dict of decision indices" in problem
    end = {"event": "end", "trial": {**old, "floats": {"x": 1}}, "feedback": 0.5}
    assert "`trial.floats` must be" in (record_problem(end) or "")


def test_checkpoints_of_binned_runs_load_with_unbinned_floats_off() -> None:
    codec = sn.encode(_space())
    old = algorithms.get("evolution", population_size=2, tournament_size=2, unbinned_floats=False)
    old.setup(codec, budget=4)
    for _ in range(3):
        p = old.propose()
        old.feedback(p, 0.5)
    state = old.state_dict()
    del state["algorithm"]["unbinned_floats"]  # as an earlier version saved it
    assert all(len(member) == 3 for member in state["algorithm"]["population"])
    new = algorithms.get("evolution", population_size=2, tournament_size=2)
    new.setup(codec, budget=4)
    with pytest.raises(ValueError, match=r"`unbinned_floats` must match the saved .*\(False\)"):
        new.load_state_dict(state)
    again = algorithms.get("evolution", population_size=2, tournament_size=2, unbinned_floats=False)
    again.setup(codec, budget=4)
    again.load_state_dict(state)
    assert again.propose().tokens == old.propose().tokens


def test_resuming_a_binned_run_with_unbinned_floats_names_the_option(tmp_path) -> None:
    def evaluate(chosen: dict[str, Any]) -> float:
        return -abs(math.log10(chosen["lr"]) + 2.5)

    def search(algorithm: Any, num_trials: int, resume: bool) -> sn.SearchResult:
        return sn.search(
            _space(), evaluate, algorithm=algorithm, num_trials=num_trials, run_dir=tmp_path,
            resume=resume, tensorboard=False, progress=False,
        )  # fmt: skip

    binned = search(algorithms.get("random", unbinned_floats=False), 3, resume=False)
    assert all(t.floats == {} for t in binned.trials)
    (tmp_path / "checkpoint.pt").unlink()  # the journal alone
    with pytest.raises(ResumeError, match=r"resume it with unbinned_floats=False"):
        search("random", 5, resume=True)
    resumed = search(algorithms.get("random", unbinned_floats=False), 5, resume=True)
    assert [t.tokens for t in resumed.trials[:3]] == [t.tokens for t in binned.trials]
