"""Named choices (issue 14, item 2): dict candidates, class and partial factories,
readable default labels and decision names; fingerprints of existing spaces kept."""

from __future__ import annotations

import functools
import json

import pytest
import torch
from torch import nn

import symbolic_nas as sn
from symbolic_nas.cli import format_report
from symbolic_nas.review.tensorboard import _SpaceTables
from symbolic_nas.storage.rundir import space_fingerprint
from tests.helpers.models import issue_space


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))


def wide(c: nn.Module) -> nn.Module:
    return nn.Conv2d(c.in_channels, c.out_channels, 5, padding=2)


def test_dict_candidates_name_the_choices_of_every_placeholder():
    codec = sn.encode(
        {
            "k": sn.oneof({"small": 3, "large": 5}),
            "ops": sn.manyof(2, {"a": 1, "b": 2, "c": 3}),
            "order": sn.permutate({"u": 1, "v": 2}),
            "inputs": sn.subset({"x": 0, "y": 1}),
        }
    )
    d = codec.decisions
    assert [x.name for x in d] == [
        "k",
        "ops[0]",
        "ops[1]",
        "order[0]",
        "order[1]",
        "inputs[x]",
        "inputs[y]",
    ]
    assert d[0].labels == ("small", "large") and d[0].values == (3, 5)
    assert d[1].labels == ("a", "b", "c") and d[3].labels == ("u", "v")
    tokens = [1, 0, 2, 1, 0, 0, 1]
    assert codec.labels(tokens)["k"] == "large"
    assert codec.materialize(tokens) == {"k": 5, "ops": [1, 3], "order": [2, 1], "inputs": [1]}


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (
            lambda: sn.oneof({3: "a"}),
            r"each name of the candidates of oneof must be a non-empty str",
        ),
        (lambda: sn.oneof({"a": 1}, hints=3), r"`hints` of oneof must be a dict or None"),
        (lambda: sn.subset({"a": 1, 2: 3}), r"each name of the candidates of subset must be"),
    ],
)
def test_bad_names_are_rejected(make, pattern):
    with pytest.raises((TypeError, ValueError), match=pattern):
        make()


def test_annotate_takes_named_candidates_classes_and_partials():
    def sep(c: nn.Module) -> nn.Module:
        return nn.Conv2d(c.in_channels, c.out_channels, 3, padding=1, groups=c.in_channels)

    space = sn.annotate(
        _net(),
        {
            "0": {"keep": sn.keep, "conv5x5": wide},
            nn.ReLU: {
                "keep": sn.keep,
                "gelu": nn.GELU,
                "leaky": functools.partial(nn.LeakyReLU, 0.1),
            },
            "2": [sn.keep, functools.partial(lambda c, k: wide(c) if k == 5 else c, k=5), sep],
        },
    )
    codec = sn.encode(space)
    assert [d.labels for d in codec.decisions] == [
        ("keep", "conv5x5"),
        ("keep", "gelu", "leaky"),
        ("keep", "lambda(k=5)", "sep"),
    ]
    model = codec.materialize([1, 1, 2])
    assert isinstance(model[1], nn.GELU) and model[0].kernel_size == (5, 5)
    assert model[2].groups == 8
    assert isinstance(codec.materialize([0, 2, 1])[1], nn.LeakyReLU)
    assert codec.decode([1, 1, 0]) == {"0": "conv5x5", "1": "gelu", "2": "keep"}
    assert model(torch.zeros(1, 1, 4, 4)).shape == (1, 8, 4, 4)


def test_default_labels_are_readable():
    space = sn.annotate(
        _net(),
        {
            nn.Conv2d: [
                sn.keep,
                lambda c: nn.Conv2d(c.in_channels, c.out_channels, 5, padding=2),
                wide,
            ],
            nn.ReLU: [sn.keep, lambda m: nn.GELU(), functools.partial(nn.Dropout, p=0.2)],
        },
    )
    labels = [d.labels for d in sn.encode(space).decisions]
    assert labels[0] == ("keep", "Conv2d(k=5, p=2)", "wide")
    assert labels[1] == ("keep", "GELU", "Dropout(p=0.2)")
    assert "<lambda>" not in repr(space)
    # Root choices of one class read as the arguments that tell them apart.
    assert sn.encode(issue_space()).decisions[0].labels == ("Net(width=16)", "Net(width=32)")


def test_equal_default_labels_stay_unique():
    space = sn.annotate(_net(), {nn.ReLU: [nn.GELU, lambda m: nn.GELU()]})
    assert sn.encode(space).decisions[0].labels == ("0:GELU", "1:GELU")


def test_decision_names_drop_branch_markers_while_unique():
    names = [d.name for d in sn.encode(issue_space()).decisions]
    assert names == ["<root>", "blocks[0].kernel", "blocks[0].act", "blocks[1].kernel"]
    codec = sn.encode(
        sn.oneof([{"x": sn.oneof([1, 2])}, {"x": sn.oneof([3, 4]), "y": sn.oneof([5, 6])}])
    )
    # "x" would name two decisions: those keep their ids.
    assert [d.name for d in codec.decisions] == ["<root>", "[=0/2].x", "[=1/2].x", "y"]


def _golden_spaces():
    net = _net()
    yield (
        sn.annotate(
            net,
            {
                nn.Conv2d: [
                    sn.keep,
                    lambda c: nn.Conv2d(c.in_channels, c.out_channels, 5, padding=2),
                    wide,
                ],
                nn.ReLU: [sn.keep, lambda m: nn.GELU()],
            },
        ),
        "5363ae36b6d0f0c44c9159f0949709349146a929100ef9af321e2fc8addb6439",
    )
    yield issue_space(), "9b9b6b5921a6e8644e0b8ea583f3e74dc107b874a1b420a6c64e7005ff39d091"
    yield (
        {
            "ops": sn.manyof(2, ["a", "b", "c"]),
            "m": sn.oneof(
                [{"x": sn.oneof([1, 2])}, {"x": sn.oneof([3, 4]), "y": sn.subset([1, 2], anchor=3)}]
            ),
        },
        "6f5e03928fa2d18aea62c4d20361e9f99811f97f9cffa4654915c522cefaa1f7",
    )


def test_fingerprints_of_existing_spaces_are_unchanged():
    # Hashes computed before choices had names: their run directories still resume.
    for space, fingerprint in _golden_spaces():
        assert space_fingerprint(sn.encode(space)) == fingerprint


def test_tensorboard_hparams_use_names_and_labels():
    space = sn.annotate(_net(), {nn.ReLU: {"relu": sn.keep, "gelu": nn.GELU}})
    tables = _SpaceTables(sn.encode(space))
    assert tables.domains == {"1": ["relu", "gelu", "-"]}
    tables = _SpaceTables(sn.encode(issue_space()))
    assert tables.domains["<root>"][:2] == ["Net(width=16)", "Net(width=32)"]
    assert "blocks[1].kernel" in tables.domains


def _reward(model: dict) -> float:
    return float(model["k"])


def test_journal_and_report_show_labels(tmp_path):
    run_dir = tmp_path / "run"
    space = {"k": sn.oneof({"small": 3, "large": 5})}
    sn.search(
        space,
        _reward,
        algorithm="random",
        num_trials=2,
        run_dir=run_dir,
        seed=0,
        tensorboard=False,
        progress=False,
    )
    records = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    ends = [r for r in records if r["event"] == "end"]
    assert ends and all(r["labels"]["k"] in ("small", "large") for r in ends)
    report = format_report(str(run_dir))
    assert "choices" in report and ("k=large" in report or "k=small" in report)
