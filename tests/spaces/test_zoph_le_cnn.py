"""The Zoph & Le (2017) CNN space: decisions, skip connections, the compile-failure rules."""

from __future__ import annotations

import pytest
import torch

import symbolic_nas as sn
from symbolic_nas import spaces
from symbolic_nas.spaces.zoph_le_cnn import LayerSpec, ZophLeCNN, concat_padded, zoph_le_cnn


@pytest.fixture(scope="module")
def codec() -> sn.Codec:
    return sn.encode(zoph_le_cnn(num_layers=3, strides=(1, 2, 3)))


def test_decisions_follow_the_paper(codec: sn.Codec) -> None:
    names = [d.name for d in codec.decisions]
    per_layer = ["num_filters", "filter_height", "filter_width", "stride_height", "stride_width"]
    assert names == (
        [f"layers[0].{n}" for n in per_layer]
        + ["layers[1].inputs.mask[0]"]
        + [f"layers[1].{n}" for n in per_layer]
        + ["layers[2].inputs.mask[0]", "layers[2].inputs.mask[1]"]
        + [f"layers[2].{n}" for n in per_layer]
    )
    by_name = {d.name: d for d in codec.decisions}
    assert by_name["layers[2].filter_height"].values == (1, 3, 5, 7)
    assert by_name["layers[2].filter_width"].values == (1, 3, 5, 7)
    assert by_name["layers[2].num_filters"].values == (24, 36, 48, 64)
    assert by_name["layers[2].stride_height"].values == (1, 2, 3)
    # Same kind, same controller head; skip connections are anchor decisions.
    assert by_name["layers[0].num_filters"].share_key == "num_filters"
    assert by_name["layers[2].num_filters"].share_key == "num_filters"
    skip = by_name["layers[2].inputs.mask[1]"]
    assert (skip.kind, skip.anchor, skip.source, skip.vocab_size) == ("subset", 2, 1, 2)
    assert by_name["layers[1].inputs.mask[0]"].anchor == 1
    assert codec.space_size == (4 * 4 * 4 * 3 * 3) ** 3 * 2**3


def test_strides_are_optional() -> None:
    codec = sn.encode(zoph_le_cnn(num_layers=4))
    assert codec.num_decisions == 4 * 3 + (0 + 1 + 2 + 3)
    assert not any("stride" in d.name for d in codec.decisions)


def test_materialized_network_applies_the_rules(codec: sn.Codec) -> None:
    # Layer 0: 24 filters 3x5 stride (2, 1); layer 1: no input (reads the image),
    # 36 filters 1x1; layer 2 reads layers 0 and 1: 24 + 36 channels, zero-padded.
    tokens = [*(0, 1, 2, 1, 0), 0, *(1, 0, 0, 0, 0), 1, 1, *(3, 3, 3, 0, 0)]
    net = codec.materialize(tokens)
    assert isinstance(net, ZophLeCNN)
    assert net.inputs == ((), (), (0, 1))
    assert net.outputs == (2,)
    conv0, conv1, conv2 = (layer.conv for layer in net.layers)
    assert (conv0.in_channels, conv0.out_channels, conv0.kernel_size, conv0.stride) == (
        3,
        24,
        (3, 5),
        (2, 1),
    )
    assert (conv1.in_channels, conv1.kernel_size) == (3, (1, 1))
    assert (conv2.in_channels, conv2.out_channels, conv2.kernel_size) == (60, 64, (7, 7))
    assert net.classifier.in_features == 64
    assert net(torch.zeros(2, 3, 8, 8)).shape == (2, 10)


def test_unconsumed_layers_are_concatenated_before_the_classifier() -> None:
    net = ZophLeCNN(
        [LayerSpec((), 24, 3, 3), LayerSpec((), 36, 1, 1, 2, 2), LayerSpec([0], 48, 5, 5)],
        in_channels=1,
        num_classes=4,
    )
    assert net.outputs == (1, 2)
    assert net.classifier.in_features == 36 + 48
    assert net(torch.zeros(3, 1, 7, 7)).shape == (3, 4)


def test_concat_padded_centres_smaller_inputs() -> None:
    big = torch.ones(1, 1, 5, 4)
    small = torch.full((1, 1, 2, 2), 2.0)
    out = concat_padded([big, small])
    assert out.shape == (1, 2, 5, 4)
    expected = torch.zeros(5, 4)
    expected[1:3, 1:3] = 2.0  # 3 extra rows: 1 on top, 2 below; 2 extra columns: 1 each side
    assert torch.equal(out[0, 1], expected)
    assert torch.equal(out[0, 0], torch.ones(5, 4))


def test_layer_inputs_must_be_earlier_layers() -> None:
    with pytest.raises(ValueError, match=r"`layers\[1\].inputs` must name earlier layers"):
        ZophLeCNN([LayerSpec((), 24, 3, 3), LayerSpec([1], 24, 3, 3)])
    with pytest.raises(ValueError, match="`layers` must hold at least one LayerSpec"):
        ZophLeCNN([])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_layers": 0}, r"`num_layers` must be an int >= 1, but got 0"),
        ({"filter_sizes": (1, 2)}, r"`filter_sizes` must be .* odd ints >= 1, but got \(1, 2\)"),
        ({"num_filters": []}, r"`num_filters` must be a non-empty sequence of distinct ints"),
        ({"strides": (1, 1)}, r"`strides` must be a non-empty sequence of distinct ints"),
        ({"num_classes": "10"}, r"`num_classes` must be an int >= 1, but got '10'"),
    ],
)
def test_bad_arguments_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        spaces.get("zoph_le_cnn", **kwargs)
