"""annotate: spaces over existing modules, without touching their source."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import symbolic_nas as sn


class Residual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return x + self.conv2(torch.relu(self.bn(self.conv1(x))))


class SmallResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.layer1 = Residual(8)
        self.layer2 = Residual(8)
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        x = self.layer2(self.layer1(self.stem(x)))
        return self.head(x.mean((2, 3)))


def five_by_five(conv: nn.Conv2d) -> nn.Conv2d:
    return nn.Conv2d(conv.in_channels, conv.out_channels, 5, conv.stride, 2)


def test_the_issue_call_works_as_written():
    net = SmallResNet()
    space = sn.annotate(
        net,
        {
            nn.Conv2d: [
                sn.keep,
                lambda conv: nn.Conv2d(conv.in_channels, conv.out_channels, 5, conv.stride, 2),
            ]
        },
    )
    codec = sn.encode(space)
    names = [d.name for d in codec.decisions]
    assert names == ["stem", "layer1.conv1", "layer1.conv2", "layer2.conv1", "layer2.conv2"]
    model = codec.materialize([1, 0, 1, 0, 0])
    assert model.stem.kernel_size == (5, 5)
    assert model.layer1.conv1.kernel_size == (3, 3)
    assert model.layer1.conv2.kernel_size == (5, 5)
    assert model(torch.randn(2, 1, 12, 12)).shape == (2, 10)


def test_kept_submodules_keep_weights_and_the_base_is_never_modified():
    net = SmallResNet()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    space = sn.annotate(net, {"layer*.conv2": [sn.keep, five_by_five]})
    model = sn.materialize(space, [0, 1])
    assert torch.equal(model.layer1.conv2.weight, net.layer1.conv2.weight)
    assert model.layer1.conv2.weight.data_ptr() != net.layer1.conv2.weight.data_ptr()
    assert torch.equal(model.stem.weight, net.stem.weight)
    assert model.layer2.conv2.kernel_size == (5, 5)
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert net.layer2.conv2.kernel_size == (3, 3)


def test_candidates_receive_the_copy_so_they_may_reuse_weights():
    net = SmallResNet()
    seen = []

    def wrap(conv):
        seen.append(conv)
        return nn.Sequential(conv, nn.ReLU())

    model = sn.materialize(sn.annotate(net, {"stem": [sn.keep, wrap]}), [1])
    assert seen[0] is model.stem[0] and seen[0] is not net.stem
    assert torch.equal(model.stem[0].weight, net.stem.weight)


def test_first_matching_rule_wins_and_children_of_matches_are_skipped():
    net = SmallResNet()
    space = sn.annotate(
        net,
        {
            "layer1": [sn.keep, lambda m: nn.Identity()],
            nn.Conv2d: [sn.keep, five_by_five],
            lambda name, m: isinstance(m, nn.Linear): [sn.keep, lambda m: nn.Linear(8, 10)],
        },
    )
    names = [d.name for d in sn.encode(space).decisions]
    assert names == ["stem", "layer1", "layer2.conv1", "layer2.conv2", "head"]


def test_shape_mismatch_is_caught_statically_with_path_and_candidate():
    space = sn.annotate(SmallResNet(), {"layer1.conv1": [sn.keep, lambda c: nn.Conv2d(8, 4, 3)]})
    with pytest.raises(
        ValueError, match=r"'layer1.conv1', candidate 1 \(Conv2d\(out=4.*\)\).*out_channels"
    ):
        sn.materialize(space, [1])


def test_shape_mismatch_is_caught_with_example_inputs():
    net = SmallResNet()
    space = sn.annotate(
        net,
        {"layer2.conv2": [sn.keep, lambda c: nn.Conv2d(8, 8, 3)]},  # no padding: shrinks
        example_inputs=torch.zeros(1, 1, 12, 12),
    )
    kept = sn.materialize(space, [0])  # passes the shape check: the original network
    x = torch.randn(2, 1, 12, 12)
    torch.testing.assert_close(kept.eval()(x), net.eval()(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"'layer2.conv2', candidate 1.*output shape must be"):
        sn.materialize(space, [1])


def test_a_failing_candidate_names_path_and_candidate():
    def broken(conv):
        raise RuntimeError("boom")

    space = sn.annotate(SmallResNet(), {"stem": [sn.keep, broken]})
    with pytest.raises(RuntimeError, match=r"building submodule 'stem', candidate 1 \(broken\)"):
        sn.materialize(space, [1])


@pytest.mark.parametrize(
    ("rules", "error", "pattern"),
    [
        ({}, ValueError, r"`rules` of annotate must be a non-empty mapping"),
        ({"nothing*": [sn.keep]}, ValueError, r"rule 'nothing\*' matched none"),
        ({nn.Conv2d: []}, ValueError, r"must be a non-empty list"),
        ({nn.Conv2d: [nn.ReLU()]}, TypeError, r"must be sn.keep, an nn.Module class or a callable"),
        ({nn.Conv2d: [int]}, TypeError, r"must be sn.keep, an nn.Module class or a callable"),
        ({nn.Conv2d: {3: sn.keep}}, TypeError, r"each name of the candidates .* non-empty str"),
        ({3: [sn.keep]}, TypeError, r"a rule selector must be a module type"),
    ],
)
def test_bad_rules(rules, error, pattern):
    with pytest.raises(error, match=pattern):
        sn.annotate(SmallResNet(), rules)


def test_annotate_needs_a_module():
    with pytest.raises(TypeError, match=r"`model` of annotate must be an nn.Module"):
        sn.annotate("net", {nn.Conv2d: [sn.keep]})


def test_annotated_space_nests_inside_other_spaces():
    space = sn.oneof([sn.annotate(SmallResNet(), {"stem": [sn.keep, five_by_five]}), nn.Identity()])
    codec = sn.encode(space)
    assert [d.parent for d in codec.decisions] == [None, 0]
    assert codec.materialize([0, 1]).stem.kernel_size == (5, 5)
    assert isinstance(codec.materialize([1]), nn.Identity)
