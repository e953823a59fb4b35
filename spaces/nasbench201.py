"""The NAS-Bench-201 cell space inside its macro skeleton, as annotated PyTorch code.

Xuanyi Dong and Yi Yang, "NAS-Bench-201: Extending the Scope of Reproducible
Neural Architecture Search", ICLR 2020.

A cell has 4 nodes and 6 edges ``(to, from)`` in the order of
``EDGES`` (:mod:`symbolic_nas.spaces.nasbench201_cell`);
each edge carries one of the 5 operations of ``OPS`` (``none``,
``skip_connect``, ``nor_conv_1x1``, ``nor_conv_3x3``, ``avg_pool_3x3``), and node
``j`` is the sum of its incoming edges. The space has one decision per edge, in
that order, with the operations in that order, so **a token sequence is the six
op codes of the benchmark table**: :func:`tokens_to_arch_str` and
:func:`arch_str_to_tokens` map it one-to-one to the official arch string, and
``symbolic_nas.nasbench.NasBench201Table.row_of_codes(tokens)`` finds its row and official index.

The network is the benchmark's: a stem (3x3 convolution to ``C`` channels +
batch norm), three stages of ``N`` cells with ``C``, ``2C`` and ``4C`` channels,
separated by residual reduction blocks (stride 2), then batch norm + ReLU, global
average pooling and a linear classifier. ``nor_conv_kxk`` is ReLU -> convolution
(no bias) -> batch norm; ``avg_pool_3x3`` is a 3x3 average pool with stride 1,
padding 1 and ``count_include_pad=False``; ``none`` outputs zeros; and
``skip_connect`` is the identity. Materialised with the defaults (``C=16, N=5``,
10 classes) its parameter count equals the table's ``params_mb`` (checked in the
tests). Unlike the reference code, ``forward`` returns the logits only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn

from symbolic_nas import space as sn
from symbolic_nas.validation import Options, check, validates

from . import nasbench201_cell as cell
from ._constraints import POSITIVE_INT
from .examples import Example, register_example
from .registry import register

__all__ = [
    "EDGES",
    "OPS",
    "Cell",
    "NasBench201Net",
    "ReLUConvBN",
    "ResidualBlock",
    "Zero",
    "arch_str_to_tokens",
    "nasbench201",
    "tokens_to_arch_str",
]

OPS = cell.OPS
EDGES = cell.EDGES
#: The constraints of :func:`nasbench201`'s arguments.
PARAMETER_CONSTRAINTS: dict[str, list[Any]] = {
    name: [POSITIVE_INT] for name in ("C", "N", "num_classes", "in_channels")
}


def tokens_to_arch_str(tokens: Sequence[int]) -> str:
    """The official arch string of a token sequence (six op codes in ``EDGES`` order).

    Raises:
        ValueError: ``tokens`` is not six ints in ``range(5)``.

    Example:
        >>> tokens_to_arch_str([3, 3, 3, 1, 3, 2])
        '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|'
    """
    return cell.codes_to_arch_str(tokens)


def arch_str_to_tokens(arch_str: str) -> list[int]:
    """The token sequence of an official arch string (inverse of :func:`tokens_to_arch_str`).

    Raises:
        ValueError: ``arch_str`` is malformed or names an unknown op.

    Example:
        >>> arch_str_to_tokens(
        ...     "|none~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|")
        [0, 1, 2, 3, 4, 0]
    """
    return list(cell.arch_str_to_codes(arch_str))


class ReLUConvBN(nn.Module):
    """ReLU -> Conv2d (no bias) -> BatchNorm2d.

    Shapes: ``[B, in_channels, H, W] -> [B, out_channels, H', W']`` (as the convolution).

    Example:
        >>> import torch
        >>> ReLUConvBN(4, 8, 3, 1, 1)(torch.zeros(1, 4, 6, 6)).shape
        torch.Size([1, 8, 6, 6])
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int
    ):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Zero(nn.Module):
    """The ``none`` operation: zeros shaped like the input.

    Example:
        >>> import torch
        >>> Zero()(torch.ones(1, 2)).tolist()
        [[0.0, 0.0]]
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_op(name: str, channels: int) -> nn.Module:
    """The module of operation ``name`` on ``channels`` channels (stride 1, shape-preserving).

    Example:
        >>> make_op("avg_pool_3x3", 4)
        AvgPool2d(kernel_size=3, stride=1, padding=1)
    """
    check("name", name, [Options(OPS)])
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1)
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)  # "avg_pool_3x3"


class Cell(nn.Module):
    """A NAS-Bench-201 cell: node ``j`` = sum of its incoming edges, output = node 3.

    Shapes: ``[B, C, H, W] -> [B, C, H, W]``.

    Args:
        ops: Six op names, one per edge in ``EDGES`` order.
        channels: Channels ``C`` of every node.

    Example:
        >>> import torch
        >>> cell = Cell(["nor_conv_3x3"] * 6, 4)
        >>> cell(torch.zeros(1, 4, 6, 6)).shape
        torch.Size([1, 4, 6, 6])
    """

    def __init__(self, ops: Sequence[str], channels: int):
        super().__init__()
        if isinstance(ops, str) or len(ops) != len(EDGES):
            raise ValueError(f"`ops` must be {len(EDGES)} op names, but got {ops!r}")
        self.ops = tuple(ops)
        self.edges = nn.ModuleList(make_op(op, channels) for op in ops)

    def extra_repr(self) -> str:
        return cell.ops_to_arch_str(self.ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for to_node in (1, 2, 3):
            incoming = [
                edge(nodes[from_node])
                for edge, (target, from_node) in zip(self.edges, EDGES)
                if target == to_node
            ]
            nodes.append(sum(incoming[1:], incoming[0]))
        return nodes[-1]


class ResidualBlock(nn.Module):
    """The reduction block between stages: a stride-2 residual basic block.

    Main path: ReLUConvBN 3x3 stride 2, then ReLUConvBN 3x3; shortcut: 2x2 average
    pool stride 2, then a 1x1 convolution (no bias). Shapes:
    ``[B, in_channels, H, W] -> [B, out_channels, ceil(H / 2), ceil(W / 2)]`` for even sizes.

    Example:
        >>> import torch
        >>> ResidualBlock(4, 8)(torch.zeros(1, 4, 8, 8)).shape
        torch.Size([1, 8, 4, 4])
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv_a = ReLUConvBN(in_channels, out_channels, 3, 2, 1)
        self.conv_b = ReLUConvBN(out_channels, out_channels, 3, 1, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


@sn.symbolize
class NasBench201Net(nn.Module):
    """The NAS-Bench-201 network for one cell (shared by all ``3 N`` cells).

    Shapes: ``[B, in_channels, H, W] -> [B, num_classes]`` (``H``, ``W`` multiples of 4).

    Args:
        ops: Six op names, one per edge in ``EDGES`` order.
        C: Channels of the first stage (doubled by each reduction block).
        N: Cells per stage.
        num_classes: Number of classes.
        in_channels: Channels of the image.

    Example:
        >>> import torch
        >>> net = NasBench201Net(["nor_conv_3x3"] * 6, C=4, N=1)
        >>> net(torch.zeros(2, 3, 8, 8)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        ops: Sequence[str],
        C: int = 16,
        N: int = 5,
        num_classes: int = 10,
        in_channels: int = 3,
    ):
        super().__init__()
        self.ops = tuple(ops)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, C, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(C)
        )
        cells: list[nn.Module] = []
        channels = C
        for stage in range(3):
            if stage:
                cells.append(ResidualBlock(channels, 2 * channels))
                channels *= 2
            cells.extend(Cell(ops, channels) for _ in range(N))
        self.cells = nn.Sequential(*cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU())
        self.classifier = nn.Linear(channels, num_classes)

    def extra_repr(self) -> str:
        return f"arch={cell.ops_to_arch_str(self.ops)!r}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.lastact(self.cells(self.stem(x)))
        return self.classifier(features.mean((2, 3)))


@register("nasbench201")
@validates(PARAMETER_CONSTRAINTS)
def nasbench201(
    *,
    C: int = 16,
    N: int = 5,
    num_classes: int = 10,
    in_channels: int = 3,
) -> sn.Call:
    """The NAS-Bench-201 space: six op decisions (one per edge, ``EDGES`` order).

    Args:
        C: Channels of the first stage (the benchmark: 16).
        N: Cells per stage (the benchmark: 5).
        num_classes: Number of classes (CIFAR-10: 10).
        in_channels: Channels of the image.

    Returns:
        A symbolic ``NasBench201Net(...)`` call: a space to encode and materialise.

    Example:
        >>> import torch, symbolic_nas as sn
        >>> codec = sn.encode(nasbench201(C=4, N=1))
        >>> codec.space_size, [d.name for d in codec.decisions][:2]
        (15625, ['1<-0', '2<-0'])
        >>> net = codec.materialize(arch_str_to_tokens(
        ...     "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
        ...     "+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"))
        >>> net(torch.zeros(2, 3, 8, 8)).shape
        torch.Size([2, 10])
    """
    ops = [
        sn.oneof(list(OPS), name=f"{to_node}<-{from_node}", hints={"share": "op"})
        for to_node, from_node in EDGES
    ]
    # The space is a symbolic call; type checkers see the net it stands for.
    net = NasBench201Net(ops, C=C, N=N, num_classes=num_classes, in_channels=in_channels)
    return cast(sn.Call, net)


@register_example("nasbench201")
def _example(*, num_classes: int = 10, in_channels: int = 3, **_: object) -> Example:
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(2, in_channels, 8, 8, generator=generator)
    return Example(inputs=(image,), output_shape=(2, num_classes))
