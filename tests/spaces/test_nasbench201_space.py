"""The NAS-Bench-201 space: tokens = the table's op codes, and the real network."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

import symbolic_nas as sn
from symbolic_nas import spaces
from symbolic_nas.nasbench import NasBench201Table
from symbolic_nas.spaces.nasbench201 import (
    EDGES,
    OPS,
    Cell,
    NasBench201Net,
    ReLUConvBN,
    Zero,
    arch_str_to_tokens,
    make_op,
    nasbench201,
    tokens_to_arch_str,
)


@pytest.fixture(scope="module")
def table() -> NasBench201Table:
    return NasBench201Table()


@pytest.fixture(scope="module")
def codec() -> sn.Codec:
    return sn.encode(spaces.get("nasbench201"))


def test_decisions_are_the_edges_in_table_order(codec: sn.Codec) -> None:
    assert [d.name for d in codec.decisions] == [f"{to}<-{frm}" for to, frm in EDGES]
    assert all(d.values == OPS == NasBench201Table.OPS for d in codec.decisions)
    assert {d.share_key for d in codec.decisions} == {"op"}
    assert codec.space_size == 15625


def test_tokens_map_one_to_one_to_arch_strings_and_indices(
    codec: sn.Codec, table: NasBench201Table
) -> None:
    seen = set()
    for tokens in itertools.product(range(5), repeat=6):
        tokens = list(tokens)
        arch = tokens_to_arch_str(tokens)
        assert arch_str_to_tokens(arch) == tokens
        row = table.row_of_codes(tokens)
        assert table.codes[row].tolist() == tokens
        assert table.arch_str(int(table.indices[row])) == arch
        seen.add(table.index_of(arch))
    assert seen == set(range(15625))
    # The codec agrees: decoding gives the op names of the arch string.
    tokens = arch_str_to_tokens(table.arch_str(6111))
    assert list(codec.decode(tokens).values()) == list(table.arch_str_to_ops(table.arch_str(6111)))


@pytest.mark.parametrize(
    "arch",
    [
        # The best cell (index 6111), all-none, all-conv3x3, and index 0 (pool, 1x1, skip).
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
        "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    ],
)
def test_parameter_count_matches_the_table(
    codec: sn.Codec, table: NasBench201Table, arch: str
) -> None:
    net = codec.materialize(arch_str_to_tokens(arch))
    params = sum(p.numel() for p in net.parameters())
    expected = table.column("params_mb")[table.row_of_index(table.index_of(arch))]
    assert params / 1e6 == pytest.approx(expected, abs=5e-6)  # the table rounds to 6 digits


def test_network_skeleton() -> None:
    net = sn.encode(nasbench201(C=4, N=2, num_classes=7)).materialize([3] * 6)
    assert isinstance(net, NasBench201Net)
    cells = list(net.cells)
    stage = ["Cell", "Cell"]
    assert [type(c).__name__ for c in cells] == [
        *stage,
        "ResidualBlock",
        *stage,
        "ResidualBlock",
        *stage,
    ]
    assert cells[2].conv_a.op[1].stride == (2, 2) and cells[2].conv_b.op[1].out_channels == 8
    assert net.classifier.in_features == 16 and net.classifier.out_features == 7
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 7)


def test_operations() -> None:
    conv = make_op("nor_conv_3x3", 4)
    assert isinstance(conv, ReLUConvBN)
    relu, conv2d, bn = conv.op
    assert isinstance(relu, nn.ReLU) and isinstance(bn, nn.BatchNorm2d)
    assert (conv2d.kernel_size, conv2d.padding, conv2d.bias) == ((3, 3), (1, 1), None)
    assert make_op("nor_conv_1x1", 4).op[1].kernel_size == (1, 1)
    pool = make_op("avg_pool_3x3", 4)
    assert (pool.kernel_size, pool.stride, pool.padding, pool.count_include_pad) == (3, 1, 1, False)
    x = torch.ones(1, 1, 3, 3)
    assert torch.equal(pool(x), x)  # count_include_pad=False: border averages stay 1
    assert isinstance(make_op("none", 4), Zero) and isinstance(
        make_op("skip_connect", 4), nn.Identity
    )
    with pytest.raises(ValueError, match=r"`name` must be one of .*, but got 'conv'"):
        make_op("conv", 4)


def test_nodes_sum_their_incoming_edges() -> None:
    x = torch.randn(1, 2, 4, 4)
    # All skip: node1 = x, node2 = x + node1, node3 = x + node1 + node2 = 4x.
    assert torch.allclose(Cell(["skip_connect"] * 6, 2)(x), 4 * x)
    # Only the 3<-0 edge is open: node3 = x.
    ops = ["none", "none", "none", "skip_connect", "none", "none"]
    assert torch.allclose(Cell(ops, 2)(x), x)
    assert torch.equal(Cell(["none"] * 6, 2)(x), torch.zeros_like(x))


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"`codes` must be 6 ints in range\(5\), but got \[5"):
        tokens_to_arch_str([5, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="is malformed"):
        arch_str_to_tokens("|none~0|")
    with pytest.raises(ValueError, match=r"`C` must be an int >= 1, but got 0"):
        spaces.get("nasbench201", C=0)
    with pytest.raises(ValueError, match=r"`ops` must be 6 op names"):
        Cell(["none"], 2)
