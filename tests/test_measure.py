"""Built-in measurements (sn.measured) and user cost tables (sn.LatencyTable)."""

from __future__ import annotations

import gzip

import pytest
import torch
from torch import nn

import symbolic_nas as sn
from symbolic_nas.spaces.nasbench201 import tokens_to_arch_str
from symbolic_nas.training.latency_table import enumerate_tokens
from symbolic_nas.training.measure import (
    count_flops,
    count_parameters,
    cpu_latency_ms,
    gpu_latency_ms,
)


def test_parameters_and_flops_of_known_layers():
    assert count_parameters(nn.Linear(10, 4)) == 44
    assert count_flops(nn.Linear(10, 4), (10,), batch_size=3) == 2 * 3 * 10 * 4
    conv = nn.Conv2d(2, 4, 3, padding=1, bias=False)
    assert count_flops(conv, (2, 5, 5)) == 2 * (4 * 5 * 5) * (2 * 3 * 3)


def test_cpu_latency_uses_one_thread_and_restores_the_model():
    model = nn.Sequential(nn.Linear(64, 64), nn.Dropout(0.5)).train()
    threads = torch.get_num_threads()
    seen = []
    model.register_forward_hook(lambda *_: seen.append(torch.get_num_threads()))
    latency = cpu_latency_ms(model, (64,), batch_size=4, warmup=2, repeats=5)
    assert latency > 0 and len(seen) == 7 and set(seen) == {1}
    assert torch.get_num_threads() == threads and model.training
    big = cpu_latency_ms(nn.Linear(512, 512), (512,), batch_size=64, repeats=9)
    small = cpu_latency_ms(nn.Linear(8, 8), (8,), batch_size=1, repeats=9)
    assert big > small


def test_gpu_latency_is_none_without_cuda():
    if torch.cuda.is_available():
        assert gpu_latency_ms(nn.Linear(8, 8), (8,)) > 0
    else:
        assert gpu_latency_ms(nn.Linear(8, 8), (8,)) is None


def test_measured_adds_the_metrics_in_the_worker_without_touching_the_trial_seed():
    space = sn.symbolize(nn.Linear)(16, sn.oneof([4, 64]))
    weights = []

    def evaluate(model):
        weights.append(model.weight.detach().clone())
        return {"reward": 1.0, "accuracy": 0.5}

    evaluate_measured = sn.measured(
        evaluate, input_shape=(16,), measure=["params", "flops", "cpu_latency_ms", "gpu_latency_ms"]
    )
    result = sn.search(
        space,
        evaluate_measured,
        objectives={"accuracy": "max", "params": "min"},
        algorithm="random",
        num_trials=4,
        seed=0,
    )
    for trial in result.trials:
        width = [4, 64][trial.tokens[0]]
        assert trial.metrics["params"] == 16 * width + width
        assert trial.metrics["flops"] == 2 * 16 * width
        assert trial.metrics["cpu_latency_ms"] > 0
        assert ("gpu_latency_ms" in trial.metrics) == torch.cuda.is_available()
    plain = []
    sn.search(
        space,
        lambda m: plain.append(m.weight.detach().clone()) or 1.0,
        algorithm="random",
        num_trials=4,
        seed=0,
    )
    assert all(torch.equal(a, b) for a, b in zip(weights, plain))  # same initial weights


def test_measured_rejects_bad_arguments():
    with pytest.raises(ValueError, match="`measure` must be a list of"):
        sn.measured(lambda m: 1.0, input_shape=(3,), measure=["latency"])
    with pytest.raises(ValueError, match="`input_shape` must be the shape of one example"):
        sn.measured(lambda m: 1.0, input_shape=(0, 3))
    with pytest.raises(ValueError, match="`repeats` must be an int >= 1"):
        sn.measured(lambda m: 1.0, input_shape=(3,), repeats=0)
    with pytest.raises(ValueError, match="an evaluator of the built model"):
        sn.measured(sn.evaluator(input="tokens")(lambda t: 1.0), input_shape=(3,))


def _nb201_codec():
    from symbolic_nas import spaces

    return sn.encode(spaces.get("nasbench201"))


def test_a_table_keyed_by_arch_string_covers_nasbench201(tmp_path):
    codec = _nb201_codec()
    every = list(enumerate_tokens(codec))
    assert len(every) == 15625 and len({tuple(t) for t in every}) == 15625
    path = tmp_path / "device.csv.gz"
    body = "arch,ms\n" + "".join(f"{tokens_to_arch_str(t)},{sum(t) / 10}\n" for t in every)
    path.write_bytes(gzip.compress(body.encode()))
    table = sn.LatencyTable.from_csv(path, key=tokens_to_arch_str, name="latency")
    table.check(codec)
    assert table([3, 3, 3, 1, 3, 2]) == pytest.approx(1.5)
    partial = sn.LatencyTable(dict(list(table.entries().items())[:-2]), key=tokens_to_arch_str)
    with pytest.raises(
        ValueError, match="must have an entry for every architecture of the space, but 2 have none"
    ):
        partial.check(codec)
    with pytest.raises(KeyError, match="has no entry"):
        partial(every[-1])


def test_a_table_keyed_by_tokens_accepts_any_separator(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('tokens,latency_ms,other\n"[0, 1]",2.5,x\n1 1,4,y\n')
    table = sn.LatencyTable.from_csv(path)
    assert (table([0, 1]), table([1, 1]), len(table)) == (2.5, 4.0, 2)
    assert sn.LatencyTable.from_csv(path, value_column="latency_ms").name == "latency_ms"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "tokens,ms\n0,1.5\n1,fast\n",
            "`ms` on line 3 of .* must be a finite number, but got 'fast'",
        ),
        ("tokens,ms\n0,1.5\n1,nan\n", "must be a finite number, but got 'nan'"),
        ("tokens,ms\n0,1\n[0],2\n", "keys of .* must be unique, but '\\[0\\]' on line 3"),
        ("tokens,ms\n,1\n", "key on line 2 of .* must be non-empty"),
        ("tokens\n0\n", "must have a key and a value column"),
        ("", "must be a CSV with a header row"),
        ("tokens,ms\n0\n", "line 2 of .* must have 2 columns"),
    ],
)
def test_bad_tables_are_rejected_naming_the_rule_and_the_value(tmp_path, text, message):
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        sn.LatencyTable.from_csv(path)


def test_bad_columns_and_values_are_rejected(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("tokens,ms\n0,1\n")
    with pytest.raises(ValueError, match="`value_column` must be one of \\['tokens', 'ms'\\]"):
        sn.LatencyTable.from_csv(path, value_column="latency")
    with pytest.raises(ValueError, match="`latency` must be a finite number for every"):
        sn.LatencyTable({"0": "1"})
    with pytest.raises(ValueError, match="`key` must be 'tokens' or a function"):
        sn.LatencyTable({}, key="arch")
