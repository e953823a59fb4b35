"""The CNN search space of Zoph & Le (2017), written as annotated PyTorch code.

Barret Zoph and Quoc V. Le, "Neural Architecture Search with Reinforcement
Learning", ICLR 2017, Section 3.3 and 4.1.

Every layer is a convolution whose filter height and width are chosen from
{1, 3, 5, 7} and its number of filters from {24, 36, 48, 64}; in the paper's
stride variant the controller also predicts a stride height and width from
{1, 2, 3} (pass ``strides=(1, 2, 3)``; by default strides are fixed to 1, the
paper's other set of experiments). Skip connections are anchor decisions:
layer ``i >= 1`` chooses any subset of the earlier layers as its inputs with
``sn.subset(list(range(i)), anchor=i)``, so an attention controller compares
the anchor point of layer ``i`` with those of the candidate layers ``j`` (layer
0 has no skip decision and always reads the image).

The paper's rules for networks that would otherwise fail to compile are part of
the model: a layer with no input reads the image; the outputs of all layers that
no other layer consumes are concatenated before the classifier; inputs of
different spatial sizes are zero-padded to the largest one (centred, the extra
row/column going to the bottom/right); several inputs are concatenated along
the depth (channel) dimension.

Each layer is convolution -> batch normalisation -> ReLU (the paper uses ReLU
and batch normalisation without fixing their order; this is the usual order,
with the convolution's bias dropped because batch normalisation cancels it).
The classifier is global average pooling and one linear layer for
``num_classes``. Decisions of the same kind share a controller head across
layers (``hints={"share": kind}``), as the paper's per-layer predictions of
the same quantity do.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from symbolic_nas import space as sn
from symbolic_nas.validation import validates

from ._constraints import CHOICES, ODD_CHOICES, POSITIVE_INT
from .examples import Example, register_example
from .registry import register

__all__ = ["ConvLayer", "LayerSpec", "ZophLeCNN", "zoph_le_cnn"]

FILTER_SIZES = (1, 3, 5, 7)
NUM_FILTERS = (24, 36, 48, 64)
PAPER_STRIDES = (1, 2, 3)

#: The constraints of :func:`zoph_le_cnn`'s arguments.
PARAMETER_CONSTRAINTS: dict[str, list[Any]] = {
    "num_layers": [POSITIVE_INT],
    "filter_sizes": [ODD_CHOICES],
    "num_filters": [CHOICES],
    "strides": [CHOICES, None],
    "in_channels": [POSITIVE_INT],
    "num_classes": [POSITIVE_INT],
}


@sn.symbolize
@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """The choices of one layer of :class:`ZophLeCNN`.

    Attributes:
        inputs: Indices of the earlier layers feeding this one (none: the image).
        num_filters: Output channels of the convolution.
        filter_height: Kernel height.
        filter_width: Kernel width.
        stride_height: Vertical stride.
        stride_width: Horizontal stride.
    """

    inputs: Sequence[int]
    num_filters: int
    filter_height: int
    filter_width: int
    stride_height: int = 1
    stride_width: int = 1


class ConvLayer(nn.Module):
    """Convolution -> BatchNorm -> ReLU with "same" padding (odd kernels).

    Shapes: ``[B, in_channels, H, W] -> [B, out_channels, ceil(H / sh), ceil(W / sw)]``.

    Example:
        >>> import torch
        >>> layer = ConvLayer(3, 24, (3, 5), (2, 1))
        >>> layer(torch.zeros(1, 3, 8, 8)).shape
        torch.Size([1, 24, 4, 8])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: tuple[int, int],
        stride: tuple[int, int] = (1, 1),
    ):
        super().__init__()
        padding = (kernel_size[0] // 2, kernel_size[1] // 2)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


def concat_padded(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenates ``[B, C_k, H_k, W_k]`` tensors along channels, zero-padding each to
    the largest height and width (centred; the odd row/column goes bottom/right).

    Example:
        >>> import torch
        >>> concat_padded([torch.ones(1, 2, 4, 4), torch.ones(1, 3, 2, 2)]).shape
        torch.Size([1, 5, 4, 4])
    """
    if len(tensors) == 1:
        return tensors[0]
    height = max(t.shape[2] for t in tensors)
    width = max(t.shape[3] for t in tensors)
    padded = []
    for t in tensors:
        dh, dw = height - t.shape[2], width - t.shape[3]
        if dh or dw:
            t = F.pad(t, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
        padded.append(t)
    return torch.cat(padded, dim=1)


@sn.symbolize
class ZophLeCNN(nn.Module):
    """A Zoph & Le (2017) convolutional network: layers with chosen inputs, a classifier.

    Layer ``i`` reads the depth-concatenation of the outputs of ``layers[i].inputs``
    (zero-padded to a common size) or, with no inputs, the image. The outputs of
    the layers no other layer reads are concatenated, globally average-pooled and
    classified by one linear layer.

    Shapes: ``[B, in_channels, H, W] -> [B, num_classes]`` for any ``H, W >= 1``.

    Args:
        layers: One :class:`LayerSpec` per layer; ``inputs`` must name earlier layers.
        in_channels: Channels of the image.
        num_classes: Number of classes.

    Attributes:
        specs: The layer specs as given.
        inputs: Each layer's input layers, sorted (empty: the image).
        outputs: The layers no other layer reads, concatenated before the classifier.

    Example:
        >>> import torch
        >>> net = ZophLeCNN([LayerSpec((), 24, 3, 3), LayerSpec([0], 36, 1, 5)])
        >>> net(torch.zeros(2, 3, 8, 8)).shape
        torch.Size([2, 10])
        >>> net.outputs
        (1,)
    """

    def __init__(self, layers: Sequence[LayerSpec], in_channels: int = 3, num_classes: int = 10):
        super().__init__()
        if not layers:
            raise ValueError(f"`layers` must hold at least one LayerSpec, but got {layers!r}")
        self.specs: tuple[LayerSpec, ...] = tuple(layers)
        self.inputs: tuple[tuple[int, ...], ...] = tuple(
            tuple(sorted(spec.inputs)) for spec in layers
        )
        for i, inputs in enumerate(self.inputs):
            if any(not 0 <= j < i for j in inputs):
                raise ValueError(
                    f"`layers[{i}].inputs` must name earlier layers (in range({i})), "
                    f"but got {list(inputs)}"
                )
        channels: list[int] = []
        self.layers = nn.ModuleList()
        for spec, inputs in zip(layers, self.inputs):
            cin = sum(channels[j] for j in inputs) if inputs else in_channels
            self.layers.append(
                ConvLayer(
                    cin,
                    spec.num_filters,
                    (spec.filter_height, spec.filter_width),
                    (spec.stride_height, spec.stride_width),
                )
            )
            channels.append(spec.num_filters)
        consumed = {j for inputs in self.inputs for j in inputs}
        self.outputs: tuple[int, ...] = tuple(i for i in range(len(layers)) if i not in consumed)
        self.classifier = nn.Linear(sum(channels[i] for i in self.outputs), num_classes)

    def extra_repr(self) -> str:
        return f"inputs={[list(i) for i in self.inputs]}, outputs={list(self.outputs)}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs: list[torch.Tensor] = []
        for layer, inputs in zip(self.layers, self.inputs):
            h = concat_padded([outs[j] for j in inputs]) if inputs else x
            outs.append(layer(h))
        features = concat_padded([outs[i] for i in self.outputs])
        return self.classifier(features.mean((2, 3)))


@register("zoph_le_cnn")
@validates(PARAMETER_CONSTRAINTS)
def zoph_le_cnn(
    *,
    num_layers: int = 6,
    filter_sizes: Sequence[int] = FILTER_SIZES,
    num_filters: Sequence[int] = NUM_FILTERS,
    strides: Sequence[int] | None = None,
    in_channels: int = 3,
    num_classes: int = 10,
) -> sn.Call:
    """The Zoph & Le (2017) CNN space with ``num_layers`` layers.

    Per layer ``i`` the decisions are, in order: its inputs (layers ``i >= 1``,
    one binary anchor token per earlier layer), number of filters, filter height,
    filter width and, with ``strides``, stride height and stride width.

    Args:
        num_layers: Number of layers (the paper grows it during the search).
        filter_sizes: Candidate filter heights and widths (odd ints).
        num_filters: Candidate numbers of filters.
        strides: None for stride 1 everywhere (no stride decisions), else the
            candidate strides, e.g. the paper's ``(1, 2, 3)``.
        in_channels: Channels of the input image.
        num_classes: Number of classes.

    Returns:
        A symbolic ``ZophLeCNN(...)`` call: a space to encode and materialise.

    Example:
        >>> import random, torch, symbolic_nas as sn
        >>> codec = sn.encode(zoph_le_cnn(num_layers=3))
        >>> codec.num_decisions        # 3 x 3 choices + 0 + 1 + 2 skip tokens
        12
        >>> model = codec.materialize(codec.random_tokens(random.Random(0)))
        >>> model(torch.zeros(2, 3, 8, 8)).shape
        torch.Size([2, 10])
    """

    def choice(values: Sequence[int], kind: str) -> int:
        return sn.oneof(list(values), hints={"share": kind})

    layers = []
    for i in range(num_layers):
        stride: dict[str, int] = {}
        if strides is not None:
            stride = {
                "stride_height": choice(strides, "stride_height"),
                "stride_width": choice(strides, "stride_width"),
            }
        layers.append(
            LayerSpec(
                inputs=sn.subset(list(range(i)), anchor=i) if i else (),
                num_filters=choice(num_filters, "num_filters"),
                filter_height=choice(filter_sizes, "filter_height"),
                filter_width=choice(filter_sizes, "filter_width"),
                **stride,
            )
        )
    # The space is a symbolic call; type checkers see the net it stands for.
    return cast(sn.Call, ZophLeCNN(layers, in_channels=in_channels, num_classes=num_classes))


@register_example("zoph_le_cnn")
def _example(
    *, in_channels: int = 3, num_classes: int = 10, image_size: int = 8, **_: object
) -> Example:
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(2, in_channels, image_size, image_size, generator=generator)
    return Example(inputs=(image,), output_shape=(2, num_classes))
