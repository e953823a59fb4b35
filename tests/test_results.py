"""Reading a finished (or running) run, and keeping trained weights (issue 14, items 3 and 6)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import pathlib
import sys

import pytest
import torch
from click.testing import CliRunner

import symbolic_nas as sn
from symbolic_nas import cli
from symbolic_nas.storage.reader import read_run
from symbolic_nas.storage.rundir import JOURNAL, Run
from symbolic_nas.storage.weights import WEIGHTS, kept_trials
from symbolic_nas.tuner.evaluation import Evaluation, Task
from symbolic_nas.validation import InvalidParameterError
from tests.helpers import results as rh


def _search(run_dir, num_trials=6, **kw):
    kw.setdefault("algorithm", "random")
    return sn.search(rh.tiny_space(), rh.fill_weights, num_trials=num_trials, run_dir=run_dir,
                     tensorboard=False, progress=False, **kw)  # fmt: skip


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("results") / "run"
    result = _search(run_dir, keep_weights="best")
    return run_dir, result


# ---------------------------------------------------------------- item 3: reading a run


def test_load_run_is_read_only_while_a_driver_holds_the_run(finished_run):
    run_dir, searched = finished_run
    journal = run_dir / JOURNAL
    clean = journal.read_bytes()
    torn = clean + b'{"event":"propose","tri'  # A driver is writing this line right now.
    journal.write_bytes(torn)
    driver = Run(run_dir)
    driver.acquire()  # The "running driver" holds the lock.
    try:
        result = sn.load_run(run_dir)
        assert read_run(run_dir).torn
        report = CliRunner().invoke(cli.cli, ["report", str(run_dir)], catch_exceptions=False)
        assert journal.read_bytes() == torn  # Neither truncated nor repaired.
    finally:
        driver.close()
        journal.write_bytes(clean)
    assert report.exit_code == 0, report.output
    assert [t.id for t in result.trials] == [t.id for t in searched.trials]
    assert [t.reward for t in result.trials] == [t.reward for t in searched.trials]
    assert result.best.id == searched.best.id and result.algorithm == "random"
    assert result.run_dir == str(run_dir) and result.best.run_dir == str(run_dir)
    assert result.best.choice_labels() == searched.best.choice_labels()
    assert set(result.best.choice_labels().values()) & {"relu", "gelu"}


def test_load_run_checks_a_given_space_and_then_has_dna(finished_run):
    run_dir, searched = finished_run
    result = sn.load_run(run_dir, rh.tiny_space())
    assert result.best.dna == searched.best.dna
    with pytest.raises(ValueError, match="`space` must be the space of run"):
        sn.load_run(run_dir, {"k": sn.oneof([1, 2])})
    with pytest.raises(sn.storage.ResumeError, match="must hold a run"):
        sn.load_run(run_dir / WEIGHTS)


def test_to_records_has_one_flat_row_per_trial(finished_run):
    run_dir, _ = finished_run
    result = sn.load_run(run_dir)
    records = result.to_records()
    assert [r["id"] for r in records] == [t.id for t in result.trials]
    first = records[0]
    assert list(first)[:3] == ["id", "status", "reward"]
    trial = result.trials[0]
    assert first["status"] == "completed" and first["reward"] == trial.reward
    for name, label in trial.choice_labels().items():
        assert first[name] == label
    assert first["width"] == str(trial.metrics["out_features"])  # The decision's label.
    assert first["out_features"] == trial.metrics["out_features"]  # A metric.
    assert first["curve"] == [0.1, 0.2]
    assert first["started"] == trial.started and first["duration"] == trial.duration
    assert first["tokens"] == trial.tokens
    json.dumps(records)  # JSON-able.


def test_to_records_prefixes_a_metric_named_like_a_decision():
    result = sn.search({"k": sn.oneof([1, 2])}, lambda a: {"reward": a["k"], "k": "metric"},
                       algorithm="random", num_trials=2, progress=False)  # fmt: skip
    record = result.to_records()[0]
    assert record["k"] in ("1", "2") and record["metric:k"] == "metric"


def test_to_dataframe_with_pandas(finished_run):
    pandas = pytest.importorskip("pandas")
    run_dir, _ = finished_run
    frame = sn.load_run(run_dir).to_dataframe()
    assert isinstance(frame, pandas.DataFrame) and len(frame) == 6
    columns = {"id", "status", "reward", "width", "out_features", "curve", "duration"}
    assert columns <= set(frame.columns)
    assert frame["reward"].idxmax() == sn.load_run(run_dir).best.id


def test_to_dataframe_without_pandas_names_the_extra(finished_run, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # "import pandas" raises ImportError.
    with pytest.raises(ImportError, match=r"symbolic-nas\[pandas\]"):
        sn.load_run(finished_run[0]).to_dataframe()


def test_report_shows_labels_and_every_metric_and_exports(finished_run, tmp_path):
    run_dir, searched = finished_run
    best = searched.best
    text = CliRunner().invoke(cli.cli, ["report", str(run_dir), "--top", "2"]).output
    assert "choices" in text and "out_features" in text
    labels = " ".join(f"{k}={v}" for k, v in best.choice_labels().items())
    assert labels in text  # Labels, not tokens.
    assert " ".join(map(str, best.tokens)) not in text.split("top 2:")[1].replace(labels, "")

    chosen = CliRunner().invoke(cli.cli, ["report", str(run_dir), "--columns", "id,curve,reward"])
    header = chosen.output.split("top ")[1].splitlines()[1].split()
    assert header == ["trial", "curve", "reward"]
    bad = CliRunner().invoke(cli.cli, ["report", str(run_dir), "--columns", "nope"])
    assert bad.exit_code == 2 and "unknown column(s) 'nope'" in bad.output

    out = tmp_path / "trials.csv"
    written = CliRunner().invoke(
        cli.cli, ["report", str(run_dir), "--format", "csv", "--output", str(out)]
    )
    assert written.exit_code == 0 and written.output == ""
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 6 and rows[best.id]["id"] == str(best.id)
    assert math.isclose(float(rows[best.id]["reward"]), best.reward)
    assert json.loads(rows[0]["curve"]) == [0.1, 0.2]

    exported = CliRunner().invoke(
        cli.cli, ["report", str(run_dir), "--format", "json", "--top", "1", "--columns", "id,width"]
    )
    width = str(best.metrics["out_features"])
    assert json.loads(exported.output) == [{"id": best.id, "width": width}]


# ---------------------------------------------------------------- item 6: keeping weights


def test_keep_best_keeps_only_the_best_trials_trained_weights(finished_run):
    run_dir, result = finished_run
    assert kept_trials(run_dir) == [result.best.id]  # Superseded files were deleted.
    model = result.best.load_model(rh.tiny_space())
    assert isinstance(model, rh.Tiny)
    assert model.fc.out_features == result.best.metrics["out_features"]
    assert torch.allclose(model.fc.weight, torch.full_like(model.fc.weight, result.best.reward))
    again = sn.load_run(run_dir).best.load_model(rh.tiny_space())
    assert torch.equal(again.fc.weight, model.fc.weight)
    other = next(t for t in result.trials if t.id != result.best.id)
    with pytest.raises(FileNotFoundError, match="keep_weights="):
        other.load_model(rh.tiny_space())
    with pytest.raises(ValueError, match="`space` must be the space of run"):
        result.best.load_model(rh.Tiny(sn.oneof([2, 3, 4])))


@pytest.mark.parametrize("keep, expected", [(2, 2), ("all", 6)])
def test_keep_k_or_all(tmp_path, keep, expected):
    result = _search(tmp_path / "run", keep_weights=keep)
    assert kept_trials(tmp_path / "run") == sorted(t.id for t in result.top(expected))
    for trial in result.top(expected):
        weight = trial.load_model(rh.tiny_space(), run_dir=tmp_path / "run").fc.weight
        assert torch.allclose(weight, torch.full_like(weight, trial.reward))


def test_keep_weights_with_process_workers(tmp_path):
    result = _search(tmp_path / "run", workers=2, executor="process", keep_weights="best")
    assert kept_trials(tmp_path / "run") == [result.best.id]
    weight = result.best.load_model(rh.tiny_space()).fc.weight
    assert torch.allclose(weight, torch.full_like(weight, result.best.reward))


def test_a_worker_sends_weights_only_when_the_reward_is_high_enough():
    evaluation = Evaluation(rh.tiny_space(), rh.fill_weights)
    never = evaluation.run(Task(0, [0, 0], seed=1))
    below = evaluation.run(Task(0, [0, 0], seed=1, keep_weights=100.0))
    always = evaluation.run(Task(0, [0, 0], seed=1, keep_weights=-math.inf))
    assert never.weights is None and below.weights is None
    assert always.reward == never.reward and isinstance(always.weights, bytes)
    state = torch.load(io.BytesIO(always.weights), weights_only=True)
    assert torch.allclose(state["fc.weight"], torch.full((2, 2), always.reward))


def test_keep_weights_is_validated(tmp_path):
    with pytest.raises(InvalidParameterError, match="`keep_weights` needs a `run_dir`"):
        sn.search(rh.tiny_space(), rh.fill_weights, keep_weights="best", progress=False)
    with pytest.raises(InvalidParameterError, match="`keep_weights` must be"):
        _search(tmp_path / "a", keep_weights="top")
    with pytest.raises(InvalidParameterError, match="`keep_weights` must be"):
        _search(tmp_path / "b", keep_weights=0)
    tokens = sn.evaluator(input="tokens")(lambda tokens: 1.0)
    with pytest.raises(ValueError, match="needs an evaluator of the built model"):
        sn.search(rh.tiny_space(), tokens, run_dir=tmp_path / "c", keep_weights="best",
                  progress=False)  # fmt: skip


def test_a_model_without_state_dict_warns_and_the_search_goes_on(tmp_path):
    with pytest.warns(RuntimeWarning, match="weights cannot be kept"):
        result = sn.search({"k": sn.oneof([1, 2])}, lambda a: a["k"], algorithm="random",
                           num_trials=2, run_dir=tmp_path / "run", keep_weights="all",
                           tensorboard=False, progress=False)  # fmt: skip
    assert len(result.completed) == 2 and kept_trials(tmp_path / "run") == []


def test_a_trial_retrains_reproducibly_with_its_trial_seed(finished_run):
    _, result = finished_run
    best = result.best
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(sn.trial_seed(0, best.id))
        model = sn.materialize(rh.tiny_space(), best.dna)
        assert rh.fill_weights(model)["reward"] == best.reward


@pytest.mark.slow  # a local Ray session (~5 s to start, ~25 s in all)
def test_keep_weights_on_ray_actors(tmp_path):
    ray = pytest.importorskip("ray")
    root = str(pathlib.Path(rh.__file__).resolve().parents[2])  # tests.helpers.results
    pythonpath = os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": pythonpath}})  # fmt: skip
    try:
        result = _search(tmp_path / "run", workers=2, executor="ray", keep_weights="best")
    finally:
        ray.shutdown()
    assert kept_trials(tmp_path / "run") == [result.best.id]
    weight = result.best.load_model(rh.tiny_space()).fc.weight
    assert torch.allclose(weight, torch.full_like(weight, result.best.reward))
