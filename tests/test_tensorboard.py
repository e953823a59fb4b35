"""Tests for symbolic_nas.review.tensorboard and tensorboard_events: the event files read back
with TensorBoard's own reader (EventAccumulator) and hparams plugin parsers."""

from __future__ import annotations

import math
import os
import random

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import (
    masked_crc32c as reference_masked_crc32c,
)
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata

import symbolic_nas as sn
from symbolic_nas import algorithms
from symbolic_nas.review.events import (
    EventFile,
    SessionStartEncoder,
    masked_crc32c,
    scalar_values,
    session_start_value,
)
from symbolic_nas.review.tensorboard import (
    INACTIVE,
    INACTIVE_FALLBACK,
    TensorBoardCallback,
    trial_markdown,
    trial_run,
)
from symbolic_nas.storage.trial import SearchResult, Trial, TrialStatus
from symbolic_nas.tuner.callbacks import SearchContext
from tests.helpers.fake_search import StatsRandomSearch, conditional_space, fake_search, reward_of

KEEP_ALL = {"scalars": 0, "tensors": 0}


def _read(path: str) -> EventAccumulator:
    accumulator = EventAccumulator(path, size_guidance=KEEP_ALL)
    accumulator.Reload()
    return accumulator


def _scalars(accumulator: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in accumulator.Scalars(tag)]


def _plugin_content(accumulator: EventAccumulator, tag: str) -> bytes:
    return accumulator.SummaryMetadata(tag).plugin_data.content


def _experiment(logdir: str) -> api_pb2.Experiment:
    content = _plugin_content(_read(logdir), hparams_metadata.EXPERIMENT_TAG)
    return hparams_metadata.parse_experiment_plugin_data(content)


def _session(run_dir: str):
    accumulator = _read(run_dir)
    start = hparams_metadata.parse_session_start_info_plugin_data(
        _plugin_content(accumulator, hparams_metadata.SESSION_START_INFO_TAG)
    )
    end = hparams_metadata.parse_session_end_info_plugin_data(
        _plugin_content(accumulator, hparams_metadata.SESSION_END_INFO_TAG)
    )
    return accumulator, start, end


@pytest.fixture(scope="module")
def codec():
    return sn.encode(conditional_space())


@pytest.fixture(scope="module")
def logged(tmp_path_factory, codec):
    """One fake search of 20 trials (every 4th fails) logged with statistics."""
    logdir = str(tmp_path_factory.mktemp("tb") / "tensorboard")
    context = fake_search(
        [TensorBoardCallback(logdir)],
        codec=codec,
        num_trials=20,
        algorithm=StatsRandomSearch(seed=3),
    )
    return logdir, context


def test_masked_crc32c_matches_tensorboards_reference():
    rng = random.Random(0)
    for size in (0, 1, 7, 100, 4096):
        data = bytes(rng.randrange(256) for _ in range(size))
        assert masked_crc32c(data) == reference_masked_crc32c(data)


def test_event_file_round_trips_through_event_accumulator(tmp_path):
    with EventFile(tmp_path) as f:
        for step in range(3):
            f.write(scalar_values({"loss": 1.0 / (step + 1)}), step=step, wall_time=10.0 + step)
    assert f.closed
    assert _scalars(_read(str(tmp_path)), "loss") == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))]
    second = EventFile(tmp_path)  # a second writer never shares the first one's file
    second.close()
    assert second.path != f.path and len(os.listdir(tmp_path)) == 2


def test_session_start_encoder_equals_the_plain_encoding():
    domains = {"k": ["3", "5", "-"], "act": ["relu", "gelu", "-"], "w": ["1", "2", "-"]}
    encoder = SessionStartEncoder(domains)
    for choices in ([0, 1, 2], [2, 0, 1], [1, 1, 0]):
        fast = encoder.value(choices, group_name="trials/00003", start_time_secs=5.0)
        plain = session_start_value(
            {name: domain[i] for (name, domain), i in zip(domains.items(), choices)},
            group_name="trials/00003",
            start_time_secs=5.0,
        )
        parse = hparams_metadata.parse_session_start_info_plugin_data
        assert parse(fast.metadata.plugin_data.content) == parse(plain.metadata.plugin_data.content)
    with pytest.raises(ValueError, match="one index per hparam"):
        encoder.value([0], group_name="x", start_time_secs=0.0)


def test_main_run_scalars_and_algorithm_statistics(logged):
    logdir, context = logged
    trials = context.trials
    accumulator = _read(logdir)
    steps = list(range(1, len(trials) + 1))
    rewards = [(i + 1, t.reward) for i, t in enumerate(trials) if t.status == TrialStatus.COMPLETED]
    assert _scalars(accumulator, "search/reward") == [(s, pytest.approx(r)) for s, r in rewards]
    best, running = [], -math.inf
    for t in trials:
        running = max(running, t.reward if t.status == TrialStatus.COMPLETED else -math.inf)
        best.append(running)
    assert _scalars(accumulator, "search/best_reward") == [
        (s, pytest.approx(b)) for s, b in zip(steps, best)
    ]
    failures = [sum(t.status == TrialStatus.FAILED for t in trials[:i]) for i in steps]
    assert _scalars(accumulator, "search/failures") == list(zip(steps, failures))
    assert failures[-1] == 5
    rates = _scalars(accumulator, "search/trials_per_second")
    assert [s for s, _ in rates] == steps and all(r > 0 for _, r in rates)
    assert [s for s, _ in _scalars(accumulator, "search/trial_seconds")] == steps
    entropy = _scalars(accumulator, "algorithm/entropy")
    assert entropy == [(s, pytest.approx(1 / (1 + s))) for s in steps]
    assert {"algorithm/epsilon", "algorithm/skip_rate"} <= set(accumulator.Tags()["scalars"])
    best_texts = accumulator.Tensors("search/best_architecture")
    improvements = [s for s, (a, b) in enumerate(zip([-math.inf, *best], best), 1) if b > a]
    assert [e.step for e in best_texts] == improvements


@pytest.mark.parametrize("name", ["reinforce", "ppo", "q_learning"])
def test_learning_algorithms_log_their_statistics(tmp_path, codec, name):
    logdir = str(tmp_path / "tensorboard")
    algorithm = algorithms.get(name, seed=0)
    fake_search([TensorBoardCallback(logdir)], codec=codec, num_trials=24, algorithm=algorithm)
    tags = set(_read(logdir).Tags()["scalars"])
    if name == "q_learning":
        assert {"algorithm/epsilon", "algorithm/unique_models"} <= tags
        return
    assert {"algorithm/entropy", "algorithm/baseline", "algorithm/skip_rate"} <= tags
    # Per-decision probabilities: every decision the controller visited has a curve.
    per_decision = {t for t in tags if t.startswith("algorithm/decision_p_max/")}
    assert {"algorithm/decision_p_max/op", "algorithm/decision_p_max/act"} <= per_decision
    points = _scalars(_read(logdir), "algorithm/decision_p_max/op")
    assert points and all(0.5 - 1e-6 <= p <= 1.0 for _, p in points)  # 2 tokens: p_max >= 1/2


def test_hparams_experiment_lists_every_decision_with_its_domain(logged, codec):
    logdir, _ = logged
    experiment = _experiment(logdir)
    infos = {info.name: info for info in experiment.hparam_infos}
    strings = [d for d in codec.decisions if d.kind != "float"]
    (lr,) = (d for d in codec.decisions if d.kind == "float")
    assert list(infos) == [d.name for d in strings] + [lr.name, f"log10({lr.name})"]
    for d in strings:
        info = infos[d.name]
        assert info.type == api_pb2.DATA_TYPE_STRING
        assert [v.string_value for v in info.domain_discrete.values] == [*d.labels, INACTIVE]
    # A float is a number in its interval, and a log-scaled one also its log10.
    for name, interval in [(lr.name, (1e-4, 1e-1)), (f"log10({lr.name})", (-4, -1))]:
        assert infos[name].type == api_pb2.DATA_TYPE_FLOAT64
        bounds = (infos[name].domain_interval.min_value, infos[name].domain_interval.max_value)
        assert bounds == pytest.approx(interval)
    metrics = [(m.name.tag, m.display_name) for m in experiment.metric_infos]
    assert metrics == [  # numeric metrics only ("note" is text)
        ("trial/reward", "reward"),
        ("trial/accuracy", "accuracy"),
        ("trial/params", "params"),
    ]


def test_one_session_per_trial_with_labels_metrics_status_and_text(logged, codec):
    logdir, context = logged
    assert sorted(os.listdir(os.path.join(logdir, "trials"))) == [f"{i:05d}" for i in range(20)]
    saw_inactive = False
    for trial in context.trials:
        accumulator, start, end = _session(os.path.join(logdir, trial_run(trial.id)))
        labels = codec.labels(trial.tokens)
        expected: dict[str, object] = {
            d.name: labels.get(d.name, INACTIVE) for d in codec.decisions if d.kind != "float"
        }
        lr = codec.materialize(trial.tokens)["lr"]
        expected.update({"lr": pytest.approx(lr), "log10(lr)": pytest.approx(math.log10(lr))})
        got = {k: v.WhichOneof("kind") for k, v in start.hparams.items()}
        assert got == {k: "number_value" if "lr" in k else "string_value" for k in expected}
        assert {k: getattr(v, got[k]) for k, v in start.hparams.items()} == expected
        saw_inactive |= INACTIVE in expected.values()
        assert start.group_name == trial_run(trial.id)
        text = accumulator.Tensors("trial/architecture")[0].tensor_proto.string_val[0].decode()
        assert f"**trial {trial.id}**: {trial.status}" in text
        assert all(f"| {name} | {label} |" in text for name, label in labels.items())
        if trial.status == TrialStatus.COMPLETED:
            assert end.status == api_pb2.STATUS_SUCCESS
            reward = [(trial.id, pytest.approx(trial.reward))]
            assert _scalars(accumulator, "trial/reward") == reward
            assert _scalars(accumulator, "trial/accuracy") == reward
            assert _scalars(accumulator, "trial/params") == [(trial.id, 1000 + trial.id)]
        else:
            assert end.status == api_pb2.STATUS_FAILURE
            assert "trial/reward" not in accumulator.Tags()["scalars"]
            assert "RuntimeError: out of memory" in text
    assert saw_inactive


def test_resume_appends_without_duplicating_records(tmp_path, codec):
    logdir = str(tmp_path / "tensorboard")
    first = fake_search([TensorBoardCallback(logdir)], codec=codec, num_trials=8)
    # A crash after the journal got trial 7 but before its run was written:
    run7 = os.path.join(logdir, trial_run(7))
    for name in os.listdir(run7):
        os.remove(os.path.join(run7, name))
    os.rmdir(run7)
    second = fake_search(
        [TensorBoardCallback(logdir)], codec=codec, num_trials=14, previous=first.trials
    )
    assert len(second.trials) == 14
    accumulator = _read(logdir)
    assert [s for s, _ in _scalars(accumulator, "search/failures")] == list(range(1, 15))
    completed = [i + 1 for i, t in enumerate(second.trials) if t.status == TrialStatus.COMPLETED]
    assert [s for s, _ in _scalars(accumulator, "search/reward")] == completed
    runs = os.listdir(os.path.join(logdir, "trials"))
    assert sorted(runs) == [f"{i:05d}" for i in range(14)]
    for run in runs:  # one file per trial run: none was written twice
        assert len(os.listdir(os.path.join(logdir, "trials", run))) == 1
    _, start, _ = _session(run7)
    assert start.group_name == "trials/00007"


def test_a_failed_write_of_a_trial_run_is_raised(tmp_path, codec):
    os.makedirs(tmp_path / "trials")
    (tmp_path / "trials" / "00002").write_text("not a folder")
    with pytest.raises(NotADirectoryError):
        fake_search([TensorBoardCallback(tmp_path)], codec=codec, num_trials=4)


def test_metrics_argument_fixes_the_metric_columns_up_front(tmp_path, codec):
    callback = TensorBoardCallback(tmp_path, metrics=["accuracy", "latency"])
    context = SearchContext(codec=codec, algorithm=algorithms.get("random"), num_trials=1)
    callback.on_search_start(context)
    assert [m.display_name for m in _experiment(str(tmp_path)).metric_infos] == [
        "reward",
        "accuracy",
        "latency",
    ]
    callback.on_search_end(SearchResult([]), context)


def test_all_failed_search_still_describes_the_experiment(tmp_path, codec):
    fake_search([TensorBoardCallback(tmp_path)], codec=codec, num_trials=3, fail_every=1)
    experiment = _experiment(str(tmp_path))
    assert [m.name.tag for m in experiment.metric_infos] == ["trial/reward"]
    assert len(experiment.hparam_infos) == codec.num_decisions + 1  # log10(lr) too


def test_inactive_placeholder_never_collides_with_a_label(tmp_path):
    codec = sn.encode(sn.oneof([{"sign": sn.oneof(["-", "+"])}, {"w": sn.oneof([1, 2])}]))
    context = fake_search([TensorBoardCallback(tmp_path)], codec=codec, num_trials=6, fail_every=0)
    domains = {
        i.name: [v.string_value for v in i.domain_discrete.values]
        for i in _experiment(str(tmp_path)).hparam_infos
    }
    sign, width = (d.name for d in codec.decisions[1:])
    assert domains[sign] == ["-", "+", INACTIVE_FALLBACK]
    assert domains[width] == ["1", "2", INACTIVE]
    for trial in context.trials:
        _, start, _ = _session(os.path.join(tmp_path, trial_run(trial.id)))
        if trial.tokens[0] == 1:
            assert start.hparams[sign].string_value == INACTIVE_FALLBACK


def test_trial_markdown_escapes_and_reports_invalid_tokens():
    codec = sn.encode({"op": sn.oneof(["a|b", "c"])})
    assert "| op | a\\|b |" in trial_markdown(
        Trial(0, [0], status=TrialStatus.COMPLETED, reward=1.0), codec
    )
    text = trial_markdown(Trial(1, [5], status=TrialStatus.FAILED, error="bad"), codec)
    assert "invalid tokens: token at position 0 must be in [0, 2)" in text
    assert text.rstrip().endswith("```")


def test_hooks_need_on_search_start_first(tmp_path, codec):
    callback = TensorBoardCallback(tmp_path)
    context = SearchContext(codec=codec, algorithm=algorithms.get("random"), num_trials=1)
    trial = Trial(0, codec.random_tokens(0), status=TrialStatus.COMPLETED, reward=reward_of([0]))
    with pytest.raises(RuntimeError, match="on_search_start must be called first"):
        callback.on_trial_end(trial, context)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"logdir": ""}, "`logdir` must be a non-empty path, but got ''"),
        ({"logdir": 3}, "`logdir` must be a non-empty path, but got 3"),
        ({"logdir": "x", "flush_secs": -1}, "`flush_secs` must be a number >= 0, but got -1"),
        ({"logdir": "x", "flush_secs": True}, "`flush_secs` must be a number >= 0, but got True"),
        ({"logdir": "x", "metrics": "acc"}, "`metrics` must be a sequence of non-empty"),
        ({"logdir": "x", "metrics": ["acc", ""]}, "`metrics` must be a sequence of non-empty"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
        TensorBoardCallback(**kwargs)
