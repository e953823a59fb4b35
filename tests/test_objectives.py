"""Several objectives (issue 11, part 2): objectives, scalarisations, constraints, the
Pareto front, the journal and resume, the CLI report and the TensorBoard plot."""

from __future__ import annotations

import glob
import itertools
import json
import os

import pytest

import symbolic_nas as sn
from symbolic_nas import algorithms
from symbolic_nas.algorithms.pareto import dominates
from symbolic_nas.cli_report import format_report
from symbolic_nas.tuner.objectives import MnasNetReward, Objectives, TuNASReward
from symbolic_nas.validation import InvalidParameterError

SPACE = {"w": sn.oneof([1, 2, 3, 4]), "d": sn.oneof([1, 2, 3])}
OBJECTIVES = {"acc": "max", "lat": "min"}


def evaluate(arch):
    return {"acc": 1 - 1 / (arch["w"] * arch["d"] + 1), "lat": float(arch["w"] * arch["d"])}


def test_the_exact_form_works_and_the_default_reward_is_the_first_objective():
    result = sn.search(
        SPACE,
        evaluate,
        objectives={"acc": "max", "lat": "min"},
        algorithm="random",
        num_trials=8,
        seed=0,
    )
    assert result.objectives == {"acc": "max", "lat": "min"}
    for trial in result.completed:
        assert trial.reward == pytest.approx(trial.metrics["acc"])
    first_min = sn.search(
        SPACE,
        evaluate,
        objectives={"lat": "min", "acc": "max"},
        algorithm="random",
        num_trials=4,
        seed=0,
    )
    assert [t.reward for t in first_min.trials] == [-t.metrics["lat"] for t in first_min.trials]


def test_mnasnet_and_tunas_rewards_follow_their_papers():
    m = MnasNetReward(target=2.0).bind(OBJECTIVES)
    assert m({"acc": 0.8, "lat": 4.0}) == pytest.approx(0.8 * 2.0**-0.07)
    assert m({"acc": 0.8, "lat": 1.0}) == pytest.approx(0.8 * 0.5**-0.07)
    hard = MnasNetReward(target=2.0, alpha=0.0, beta=-1.0).bind(OBJECTIVES)
    assert hard({"acc": 0.8, "lat": 1.0}) == pytest.approx(0.8)
    assert hard({"acc": 0.8, "lat": 4.0}) == pytest.approx(0.4)
    t = TuNASReward(target=2.0, beta=-0.5).bind(OBJECTIVES)
    assert t({"acc": 0.8, "lat": 3.0}) == pytest.approx(0.8 - 0.25)
    assert t({"acc": 0.8, "lat": 1.0}) == pytest.approx(0.8 - 0.25)  # cheaper is penalised too
    result = sn.search(
        SPACE,
        evaluate,
        objectives=OBJECTIVES,
        algorithm="random",
        num_trials=5,
        seed=0,
        scalarization=MnasNetReward(target=4.0),
    )
    for trial in result.trials:
        acc, lat = trial.metrics["acc"], trial.metrics["lat"]
        assert trial.reward == pytest.approx(acc * (lat / 4.0) ** -0.07)


def test_hard_constraints_give_infeasible_trials_the_penalty():
    result = sn.search(
        SPACE,
        evaluate,
        objectives=OBJECTIVES,
        constraints={"lat": 4.0},
        infeasible_reward=-1.0,
        algorithm="random",
        num_trials=12,
        seed=0,
    )
    assert {t.metrics["feasible"] for t in result.trials} == {True, False}
    for trial in result.trials:
        assert trial.metrics["feasible"] == (trial.metrics["lat"] <= 4.0)
        assert trial.reward == (trial.metrics["acc"] if trial.metrics["feasible"] else -1.0)
    assert all(t.metrics["lat"] <= 4.0 for t in result.pareto_front())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"objectives": {"acc": "maximise"}}, "`objectives` must be None or a dict"),
        ({"objectives": {}}, "`objectives` must be None or a dict"),
        ({"objectives": {"reward": "max"}}, "not 'reward'"),
        (
            {"scalarization": MnasNetReward(target=1.0)},
            "`scalarization` must be None without `objectives`",
        ),
        ({"constraints": {"lat": 1.0}}, "`constraints` must be None without `objectives`"),
        ({"objectives": OBJECTIVES, "constraints": {"size": 1.0}}, "`constraints` must be"),
        ({"objectives": OBJECTIVES, "constraints": {"lat": "1"}}, "`constraints` must be"),
        ({"objectives": OBJECTIVES, "infeasible_reward": float("nan")}, "`infeasible_reward`"),
        ({"objectives": OBJECTIVES, "scalarization": "mnasnet"}, "`scalarization` must be None or"),
        ({"objectives": OBJECTIVES, "scalarization": MnasNetReward(target=0)}, "`target` must"),
        ({"objectives": OBJECTIVES, "scalarization": TuNASReward(target=1, beta=0.1)}, "`beta`"),
        (
            {
                "objectives": {"a": "max", "b": "max", "lat": "min"},
                "scalarization": MnasNetReward(target=1.0),
            },
            "`accuracy` must be given",
        ),
        (
            {"objectives": OBJECTIVES, "scalarization": MnasNetReward(target=1.0, cost="acc")},
            "`cost` must name an objective with direction 'min'",
        ),
    ],
)
def test_options_are_validated_up_front(kwargs, message):
    calls = []
    with pytest.raises(InvalidParameterError, match=message):
        sn.search(
            SPACE, lambda a: calls.append(a) or 1.0, algorithm="random", num_trials=2, **kwargs
        )
    assert calls == []  # nothing ran


def test_an_objective_the_evaluator_never_returns_stops_at_the_first_trial(tmp_path):
    calls = []

    def evaluate_without_latency(arch):
        calls.append(arch)
        return {"acc": 0.5}

    with pytest.raises(sn.ObjectiveMissingError, match=r"\['lat'\] is not among its metrics"):
        sn.search(
            SPACE,
            evaluate_without_latency,
            objectives=OBJECTIVES,
            algorithm="random",
            num_trials=10,
            run_dir=tmp_path / "run",
            tensorboard=False,
        )
    assert len(calls) == 1
    lines = (tmp_path / "run" / "journal.jsonl").read_text().splitlines()
    events = [json.loads(line).get("event") for line in lines]
    assert "start" in events and "end" not in events  # the trial runs again on resume
    with pytest.raises(sn.ObjectiveMissingError, match="must return a dict with the objectives"):
        sn.search(SPACE, lambda a: 0.5, objectives=OBJECTIVES, algorithm="random", num_trials=3)


def test_a_non_finite_objective_fails_only_its_trial():
    result = sn.search(
        SPACE,
        lambda a: {"acc": float("nan") if a["w"] == 1 else 0.5, "lat": 1.0},
        objectives=OBJECTIVES,
        algorithm="random",
        num_trials=12,
        seed=0,
    )
    assert result.failed and result.completed
    assert "objective `acc` must be a finite number" in result.failed[0].error


def test_pareto_front_is_exactly_the_non_dominated_trials():
    result = sn.search(
        SPACE, evaluate, objectives=OBJECTIVES, algorithm="random", num_trials=30, seed=1
    )
    front = result.pareto_front()
    points = {t.id: (t.metrics["acc"], -t.metrics["lat"]) for t in result.completed}
    for t in result.completed:
        dominated = any(dominates(points[o], points[t.id]) for o in points)
        duplicate_of_front = any(points[f.id] == points[t.id] for f in front)
        assert (t in front) == (
            not dominated and t.id == min(o for o in points if points[o] == points[t.id])
        )
        assert dominated or duplicate_of_front
    accuracies = [t.metrics["acc"] for t in front]
    assert accuracies == sorted(accuracies, reverse=True)
    with pytest.raises(ValueError, match="`objectives` must be given"):
        sn.search(SPACE, lambda a: 1.0, algorithm="random", num_trials=2).pareto_front()
    assert result.pareto_front({"lat": "min"})[0].metrics["lat"] == 1.0


def test_nsga2_gets_the_objective_vector_and_resume_replays_it(tmp_path):
    seen = []

    class Recording(algorithms.get("nsga2").__class__):
        def _feedback_objectives(self, proposal, reward, objectives):
            seen.append(objectives)
            super()._feedback_objectives(proposal, reward, objectives)

    run_dir = tmp_path / "run"
    kwargs = dict(
        objectives=OBJECTIVES,
        seed=0,
        run_dir=run_dir,
        tensorboard=False,
        checkpoint_interval=3600.0,
    )
    sn.search(SPACE, evaluate, algorithm=Recording(population_size=4), num_trials=6, **kwargs)
    assert len(seen) == 6 and all(len(v) == 2 and v[1] < 0 for v in seen)
    records = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    ends = [r for r in records if r.get("event") == "end"]
    assert all(r["objectives"][0] == r["trial"]["metrics"]["acc"] for r in ends)
    # A fresh session replays the journal after the first checkpoint: the vectors come back.
    resumed = Recording(population_size=4)
    seen.clear()
    result = sn.search(SPACE, evaluate, algorithm=resumed, num_trials=10, resume=True, **kwargs)
    assert len(result.trials) == 10
    assert len(resumed.population) == 4 and all(v is not None for _, v, _, _ in resumed.population)


def test_nsga2_finds_the_whole_front_of_a_small_space():
    result = sn.search(
        SPACE, evaluate, objectives=OBJECTIVES, algorithm="nsga2", num_trials=12, seed=0
    )
    # acc grows with lat, so every distinct latency is on the front (once).
    every_latency = sorted({float(w * d) for w, d in itertools.product([1, 2, 3, 4], [1, 2, 3])})
    assert sorted(t.metrics["lat"] for t in result.pareto_front()) == every_latency
    assert len({tuple(t.tokens) for t in result.trials}) == 12  # no repeated proposal


def test_load_run_the_cli_report_and_the_tensorboard_plot(tmp_path):
    run_dir = tmp_path / "run"
    sn.search(
        SPACE,
        evaluate,
        objectives=OBJECTIVES,
        algorithm="nsga2",
        num_trials=10,
        seed=0,
        run_dir=run_dir,
    )
    loaded = sn.load_run(run_dir)
    assert loaded.objectives == OBJECTIVES
    assert [t.id for t in loaded.pareto_front()] == [t.id for t in loaded.pareto_front()]
    text = format_report(str(run_dir))
    assert f"Pareto front ({len(loaded.pareto_front())} trials; acc (max), lat (min))" in text
    files = glob.glob(os.path.join(run_dir, "tensorboard", "pareto", "events.out.tfevents.*"))
    assert len(files) == 1
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(os.path.dirname(files[0]), size_guidance={"images": 0})
    events.Reload()
    assert events.Tags()["images"] == ["pareto/acc_vs_lat"]
    image = events.Images("pareto/acc_vs_lat")[-1]
    assert image.encoded_image_string[:4] == b"\x89PNG" and image.width > 100


def test_the_png_without_matplotlib_is_a_valid_image(tmp_path):
    import zlib

    from symbolic_nas.review.pareto_plot import pareto_png
    from symbolic_nas.storage.trial import Trial

    trials = [
        Trial(i, [i], status="completed", reward=0.0, metrics={"a": float(i), "l": i * i})
        for i in range(5)
    ]
    png, height, width = pareto_png(trials, trials[:2], ["l", "a"], labels=False)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    length = int.from_bytes(png[33:37], "big")  # the IDAT chunk after the 25-byte IHDR
    assert png[37:41] == b"IDAT"
    raw = zlib.decompress(png[41 : 41 + length])
    assert len(raw) == height * (1 + 3 * width)
    assert b"\xd6\x27\x28" in raw  # the front's red is drawn


def test_objectives_class_keeps_its_order_and_config():
    o = Objectives({"lat": "min", "acc": "max"}, constraints={"acc": 0.5})
    assert o.vector({"acc": 0.9, "lat": 2.0}) == [-2.0, 0.9]
    assert not o.feasible({"acc": 0.4, "lat": 1.0})
    assert o.to_config()["directions"] == {"lat": "min", "acc": "max"}
    json.dumps(o.to_config())


def test_a_run_resumes_only_with_the_same_objectives(tmp_path):
    run_dir = tmp_path / "run"
    kwargs = dict(algorithm="random", seed=0, run_dir=run_dir, tensorboard=False)
    sn.search(SPACE, evaluate, objectives=OBJECTIVES, num_trials=3, **kwargs)
    with pytest.raises(sn.storage.ResumeError, match="objectives"):
        sn.search(SPACE, evaluate, objectives={"lat": "min", "acc": "max"}, num_trials=5,
                  resume=True, **kwargs)  # fmt: skip
    result = sn.search(SPACE, evaluate, objectives=OBJECTIVES, num_trials=5, resume=True, **kwargs)
    assert len(result.trials) == 5


def test_an_algorithm_with_the_old_feedback_signature_still_works_with_objectives():
    from symbolic_nas.algorithms.random_search import RandomSearch

    class OldStyle(RandomSearch):
        def feedback(self, proposal, reward):  # overrides without `objectives`
            self.told = [*getattr(self, "told", []), reward]
            super().feedback(proposal, reward)

    algorithm = OldStyle(seed=0)
    result = sn.search(SPACE, evaluate, objectives=OBJECTIVES, algorithm=algorithm, num_trials=4)
    assert algorithm.told == [t.reward for t in sorted(result.trials, key=lambda t: t.id)]


def test_the_issue_s_exact_objectives_dict_works_with_accuracy_and_latency_metrics():
    def measured(arch):
        return {"accuracy": 1 - 1 / (arch["w"] * arch["d"] + 1), "latency": float(arch["w"])}

    result = sn.search(
        SPACE,
        measured,
        objectives={"accuracy": "max", "latency": "min"},
        algorithm="nsga2",
        num_trials=12,
        progress=False,
        tensorboard=False,
    )
    front = result.pareto_front()
    assert front and all(t.status.is_finished() for t in front)
    for a, b in itertools.permutations(front, 2):  # no trial of the front dominates another
        assert not (
            a.metrics["accuracy"] >= b.metrics["accuracy"]
            and a.metrics["latency"] <= b.metrics["latency"]
            and (a.metrics["accuracy"], a.metrics["latency"])
            != (b.metrics["accuracy"], b.metrics["latency"])
        )
