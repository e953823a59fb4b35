"""MetaQNN's conditional layer-sequence space: structure, restrictions, networks."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

import symbolic_nas as sn
from symbolic_nas import spaces
from symbolic_nas.spaces.metaqnn import (
    FC,
    GAP,
    Conv,
    MetaQNNNet,
    Pool,
    legal_layers,
    metaqnn,
    representation_bucket,
)

SMALL = {"conv_filters": (4, 8), "fc_sizes": (16, 8)}


@pytest.fixture(scope="module")
def codec() -> sn.Codec:
    return sn.encode(metaqnn(max_layers=4, **SMALL))


def test_decision_count_is_linear_in_depth() -> None:
    counts = [sn.encode(metaqnn(max_layers=n, **SMALL)).num_decisions for n in (1, 2, 3, 4)]
    assert counts == [4, 9, 14, 19]  # 5 per step (4 at step 0, which has no pooling choice)


def test_default_space_matches_the_paper() -> None:
    codec = sn.encode(spaces.get("metaqnn"))
    assert codec.num_decisions == 89  # 18 steps
    by_name = {d.name: d for d in codec.decisions}
    assert by_name["layer0"].labels == ("add_layer", "terminate")
    assert by_name["layer3.filters"].values == (64, 128, 256, 512)
    assert by_name["layer3.kernel_size"].values == (1, 3, 5)
    assert by_name["layer3.type"].labels == ("Conv", "Pool(5, 3)", "Pool(3, 2)", "Pool(2, 2)")
    assert "layer0.type" not in by_name  # no pooling as the first layer
    last = ("Tail()", "Tail(GAP())", "Tail(FC(512))", "Tail(FC(256))", "Tail(FC(128))")
    assert by_name["layer17.tail"].labels == last
    tails = by_name["layer0.tail"].labels
    assert len(tails) == 2 + 3 + 6 and "Tail(FC(512), FC(256))" in tails
    assert "Tail(FC(256), FC(512))" not in tails  # widths never grow
    assert "layer18" not in by_name  # step 18 only terminates


def test_static_restrictions_hold_by_construction(codec: sn.Codec) -> None:
    rng = random.Random(0)
    for _ in range(200):
        net = codec.materialize(codec.random_tokens(rng))
        specs = net.specs
        assert len(specs) <= 4
        assert not specs or not isinstance(specs[0], Pool)
        kinds = [type(s).__name__ for s in specs]
        body = kinds[: len(kinds) - sum(k in ("FC", "GAP") for k in kinds)]
        assert set(body) <= {"Conv", "Pool"}, kinds  # FC and GAP only at the end
        tail = specs[len(body) :]
        assert len(tail) <= 2
        assert all(isinstance(s, FC) for s in tail) or tail == (GAP(),), kinds
        widths = [s.units for s in tail if isinstance(s, FC)]
        assert widths == sorted(widths, reverse=True)


def test_every_depth_is_reachable(codec: sn.Codec) -> None:
    depths = set()
    rng = random.Random(1)
    for _ in range(300):
        tokens = codec.random_tokens(rng)
        depths.add(len(codec.materialize(tokens).specs))
    assert depths == {0, 1, 2, 3, 4}


def test_representation_buckets() -> None:
    assert [representation_bucket(s) for s in (1, 3, 4, 7, 8, 32)] == [1, 1, 4, 4, 8, 8]


def test_state_dependent_rules_at_build_time() -> None:
    layers = [Conv(4, 5), Pool(5, 3), Pool(3, 2), Conv(4, 5), Pool(3, 2), Conv(8, 3), Conv(8, 1)]
    kept, skipped = legal_layers(layers, 32)
    # 32 -> Pool(5, 3) -> 10: bucket 8; the second pool follows a pool; Conv(4, 5) ok;
    # Pool(3, 2) -> 4: bucket 4, so kernel 3 is ok but kernel 1 ... also ok (1 < 4).
    assert kept == [Conv(4, 5), Pool(5, 3), Conv(4, 5), Pool(3, 2), Conv(8, 3), Conv(8, 1)]
    assert [p for p, _ in skipped] == [2]
    # At size 3 (bucket 1) no convolution or pooling is legal, and FC is.
    kept, skipped = legal_layers([Conv(4, 1), Conv(4, 1), Pool(2, 2), FC(8), FC(8)], 3)
    assert kept == [FC(8), FC(8)]
    assert [p for p, _ in skipped] == [0, 1, 2]
    assert "bucket, but it is 1 (size 3)" in skipped[0][1]
    # FC needs bucket <= 4 (size <= 7); a dropped first FC takes the second one with it.
    assert legal_layers([Conv(4, 3), FC(8), FC(8)], 8)[0] == [Conv(4, 3)]
    assert legal_layers([Conv(4, 3), FC(8), FC(8)], 7)[0] == [Conv(4, 3), FC(8), FC(8)]
    assert legal_layers([GAP()], 32)[0] == [GAP()]


def test_network_shapes_follow_the_representation_size() -> None:
    net = MetaQNNNet([Conv(8, 3), Pool(5, 3), Conv(8, 3), Pool(3, 2), FC(16), FC(8)], 32)
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    # 32 -> (32 - 5) // 3 + 1 = 10 -> (10 - 3) // 2 + 1 = 4: 8 * 4 * 4 features.
    assert [(m.in_features, m.out_features) for m in linears] == [(128, 16), (16, 8), (8, 10)]
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    gap = MetaQNNNet([Conv(8, 3), GAP()], 16, in_channels=1, num_classes=5)
    convs = [m for m in gap.modules() if isinstance(m, nn.Conv2d)]
    assert convs[-1].out_channels == 5 and convs[-1].kernel_size == (1, 1)
    assert gap.classifier.in_features == 5
    assert gap(torch.zeros(2, 1, 16, 16)).shape == (2, 5)
    plain = MetaQNNNet([], 6)  # terminate at once: a linear classifier on the image
    assert plain.classifier.in_features == 3 * 6 * 6
    assert "skipped" not in plain.extra_repr()


def test_materialized_net_reports_skipped_layers(codec: sn.Codec) -> None:
    # layer0 add Conv(4, 1); layer1 add Pool(5, 3); layer2 add Pool(2, 2); layer3 terminate
    # with [FC(16)]: the second pool follows a pool, and FC needs size <= 7 (it is 10).
    tokens = [0, 0, 0, 0, 1, 0, 3, 1, 2]
    net = codec.materialize(tokens)
    assert net.specs == (Conv(4, 1), Pool(5, 3), Pool(2, 2), FC(16))
    assert net.layers == (Conv(4, 1), Pool(5, 3))
    assert [p for p, _ in net.skipped] == [2, 3]
    assert "skipped=[2, 3]" in repr(net)
    assert net(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_layers": 0}, r"`max_layers` must be an int >= 1, but got 0"),
        ({"conv_kernel_sizes": (2,)}, r"`conv_kernel_sizes` must be .* distinct odd ints"),
        ({"pools": [(5, 3), (5, 3)]}, r"`pools` must be a non-empty sequence of distinct"),
        ({"pools": [(5,)]}, r"`pools` must be a non-empty sequence of distinct"),
        ({"max_fc": -1}, r"`max_fc` must be an int >= 0, but got -1"),
    ],
)
def test_bad_arguments_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        spaces.get("metaqnn", **kwargs)


def test_unknown_layer_is_rejected() -> None:
    with pytest.raises(TypeError, match="`layers` must hold Conv, Pool, FC or GAP, but got 'x'"):
        legal_layers(["x"], 8)
