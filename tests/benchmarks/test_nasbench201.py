"""NasBench201: the NAS-Bench-201 space with a tabular, tokens-only evaluator."""

from __future__ import annotations

import gzip
import importlib.resources
import json

import pytest

import symbolic_nas as sn
from symbolic_nas.algorithms import Proposal
from symbolic_nas.nasbench import NasBench201, NasBench201Table
from symbolic_nas.storage.trial import Trial
from symbolic_nas.tuner.evaluators import input_of

BEST = [3, 3, 3, 1, 3, 2]  # index 6111


@pytest.fixture(scope="module")
def bench() -> NasBench201:
    return NasBench201()


def test_evaluate_returns_fitness_as_reward_with_metrics(bench: NasBench201) -> None:
    assert input_of(bench.evaluate) == "tokens"
    result = bench.evaluate(BEST)
    assert result == {
        "reward": 84.384,
        "c10valid_val_12": 84.384,
        "c10_test_200": 94.3733,
        "index": 6111,
    }
    assert json.loads(json.dumps(result)) == result
    assert all(type(v) in (float, int) for v in result.values())  # plain Python numbers


def test_evaluate_agrees_with_the_table_everywhere(bench: NasBench201) -> None:
    table = bench.table
    fitness = table.column("c10valid_val_12")
    report = table.column("c10_test_200")
    for row, codes in enumerate(table.codes.tolist()):
        result = bench.evaluate(codes)
        assert result["reward"] == fitness[row] and result["c10_test_200"] == report[row]
        assert result["index"] == table.indices[row]


def test_space_and_codec(bench: NasBench201) -> None:
    assert bench.codec.space_size == 15625
    assert bench.codec.num_decisions == 6
    net = bench.codec.materialize(BEST)
    assert type(net).__name__ == "NasBench201Net"
    assert bench.arch_str(BEST) == bench.table.arch_str(6111)


def test_report_accepts_trials_proposals_dna_and_tokens(bench: NasBench201) -> None:
    expected = 94.3733
    dna = bench.codec.from_tokens(BEST)
    assert bench.report(BEST) == expected
    assert bench.report(tuple(BEST)) == expected
    assert bench.report(dna) == expected
    assert bench.report(Trial(id=0, tokens=BEST)) == expected
    assert bench.report(Proposal(id=0, tokens=BEST)) == expected
    assert bench.index(dna) == 6111
    with pytest.raises(ValueError, match="`architecture` must be a trial or proposal"):
        bench.report(None)
    with pytest.raises(ValueError, match=r"`codes` must be 6 ints in range\(5\)"):
        bench.report([3, 3, 3])
    with pytest.raises(ValueError, match=r"`codes` must be 6 ints in range\(5\)"):
        bench.evaluate([0, 0, 0, 0, 0, 5])


def test_any_columns_as_fitness_and_report() -> None:
    bench = NasBench201(fitness="c10valid_val_200", report="params_mb")
    result = bench.evaluate(BEST)
    assert result["reward"] == result["c10valid_val_200"] == 91.6067
    assert bench.report(BEST) == result["params_mb"] == pytest.approx(1.07347)
    assert (bench.fitness_column, bench.report_column) == ("c10valid_val_200", "params_mb")


@pytest.mark.parametrize("kwargs", [{"fitness": "accuracy"}, {"report": "index"}, {"fitness": 3}])
def test_unknown_columns_are_rejected_with_the_list(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=r"must be one of the table's columns \['c10valid_val_12'"):
        NasBench201(**kwargs)


def test_custom_table_file(tmp_path) -> None:
    resource = importlib.resources.files("symbolic_nas.nasbench").joinpath(
        "data", "nb201_cifar10.csv.gz"
    )
    lines = gzip.decompress(resource.read_bytes()).decode().splitlines()
    header = lines[0].split(",")
    keep = [header.index(c) for c in ("index", "arch_str", "c10_test_200")]
    rows = [",".join(line.split(",")[i] for i in keep) for line in lines[:1] + lines[6111:6113]]
    path = tmp_path / "mine.csv"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=r"`fitness` must be one of .*\['c10_test_200'\]"):
        NasBench201(path)
    bench = NasBench201(path, fitness="c10_test_200", report="c10_test_200")
    assert len(bench.table) == 2
    assert bench.evaluate(BEST) == {"reward": 94.3733, "c10_test_200": 94.3733, "index": 6111}
    with pytest.raises(KeyError, match="are not in the table"):
        bench.evaluate([0] * 6)


def test_search_snippet_runs(bench: NasBench201) -> None:
    result = sn.search(bench.space, bench.evaluate, algorithm="random", num_trials=30, seed=0)
    assert len(result.completed) == 30
    best = result.best
    assert best.reward == max(t.reward for t in result.completed)
    assert bench.report(best) == best.metrics["c10_test_200"]
    column = bench.table.column("c10_test_200")
    assert bench.report(best) == column[bench.table.row_of_codes(best.tokens)]


def test_table_class_is_still_exported(bench: NasBench201) -> None:
    assert type(bench.table) is NasBench201Table
