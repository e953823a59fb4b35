"""MetaQNN's layer-sequence space (Baker et al. 2017), as a conditional space.

Bowen Baker, Otkrist Gupta, Nikhil Naik and Ramesh Raskar, "Designing Neural
Network Architectures using Reinforcement Learning", ICLR 2017 (Section 4,
Table 1, Appendix B); reference code: github.com/bowenbaker/metaqnn
(``libs/grammar/state_enumerator.py``, ``models/cifar10/state_space_parameters.py``).

A network is a sequence of layers, then a softmax classifier: convolutions
(filters {64, 128, 256, 512}, square kernels {1, 3, 5}, stride 1, "same"
padding, ReLU), max pooling ((kernel, stride) in {(5, 3), (3, 2), (2, 2)}),
then optionally global average pooling or up to 2 fully connected layers
({512, 256, 128} units, ReLU).

**Structure.** The space is a chain in which only termination is conditional:
at step ``i`` (``i`` layers placed) one decision (``layer{i}``) either adds a
layer and continues with step ``i + 1`` (``add_layer``), or terminates
(``terminate``) with a tail chosen by ``layer{i}.tail``: nothing, global average pooling, or 1..2
fully connected layers of non-increasing width. Only the continuing branch
holds the rest of the chain, so the number of decisions grows linearly with
``max_layers``: ``5 * max_layers - 1`` decisions, 89 for the defaults (nesting
every later layer under each layer type instead would grow exponentially).

**Restrictions enforced by construction** (no token sequence breaks them):
the maximum depth ``max_layers`` (tails that would exceed it are not offered,
and step ``max_layers`` only terminates); no pooling as the first layer;
fully connected layers and global average pooling only at the end, the former
at most ``max_fc`` in a row with non-increasing widths; every network ends with
the softmax classifier.

**State-dependent restrictions, enforced when the network is built** with the
reference code's legality rules (:func:`legal_layers`): a layer whose transition
would be illegal in the state reached so far is left out (recorded in
``MetaQNNNet.skipped``). Like the reference code, these rules compare against
the *bucketed* representation size (8 for sizes >= 8, 4 for 4..7, 1 for 1..3):
a convolution or pooling needs a kernel smaller than the bucket; a pooling
layer must follow a convolution (no consecutive pooling: it depends on the
previous layer, which a tree of choices cannot express without duplicating
subtrees exponentially); the first fully connected layer needs a bucket <= 4.
A second fully connected layer is kept only when the first one was.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn

from symbolic_nas import space as sn
from symbolic_nas.validation import Interval, Satisfies, SequenceOf, validates

from ._constraints import CHOICES, ODD_CHOICES, POSITIVE_INT
from .examples import Example, register_example
from .registry import register

__all__ = [
    "FC",
    "GAP",
    "Conv",
    "MetaQNNNet",
    "Pool",
    "Tail",
    "add_layer",
    "legal_layers",
    "metaqnn",
    "representation_bucket",
    "terminate",
]

CONV_FILTERS = (64, 128, 256, 512)
CONV_KERNEL_SIZES = (1, 3, 5)
POOLS = ((5, 3), (3, 2), (2, 2))
FC_SIZES = (512, 256, 128)

_POOL = Satisfies(
    lambda p: isinstance(p, Sequence) and len(p) == 2 and all(map(POSITIVE_INT.is_satisfied_by, p)),
    "a (kernel_size, stride) pair of ints >= 1",
    invalid=[(5,), (0, 1)],
)
#: The constraints of :func:`metaqnn`'s arguments.
PARAMETER_CONSTRAINTS: dict[str, list[Any]] = {
    "max_layers": [POSITIVE_INT],
    "image_size": [POSITIVE_INT],
    "in_channels": [POSITIVE_INT],
    "num_classes": [POSITIVE_INT],
    "conv_filters": [CHOICES],
    "conv_kernel_sizes": [ODD_CHOICES],
    "pools": [
        SequenceOf(
            _POOL,
            min_len=1,
            distinct=True,
            description="a non-empty sequence of distinct (kernel_size, stride) pairs of ints >= 1",
        )
    ],
    "fc_sizes": [CHOICES],
    "max_fc": [Interval(int, 0, None)],
}


@sn.symbolize
@dataclasses.dataclass(frozen=True)
class Conv:
    """A convolution layer: ``filters`` square ``kernel_size`` kernels, stride 1, ReLU."""

    filters: int
    kernel_size: int

    def __repr__(self) -> str:
        return f"Conv({self.filters}, {self.kernel_size})"


@dataclasses.dataclass(frozen=True)
class Pool:
    """A max-pooling layer."""

    kernel_size: int
    stride: int

    def __repr__(self) -> str:
        return f"Pool({self.kernel_size}, {self.stride})"


@dataclasses.dataclass(frozen=True)
class FC:
    """A fully connected layer with ReLU."""

    units: int

    def __repr__(self) -> str:
        return f"FC({self.units})"


@dataclasses.dataclass(frozen=True)
class GAP:
    """Global average pooling: 1x1 convolution to ``num_classes`` + ReLU, then averaging."""

    def __repr__(self) -> str:
        return "GAP()"


Layer = Conv | Pool | FC | GAP


@dataclasses.dataclass(frozen=True)
class Tail:
    """The layers a terminating step puts before the classifier (none, GAP, or FCs)."""

    layers: tuple[Layer, ...] = ()

    def __repr__(self) -> str:
        return f"Tail({', '.join(map(repr, self.layers))})"


@sn.symbolize
def add_layer(layer: Layer, rest: Sequence[Layer]) -> list[Layer]:
    """``[layer, *rest]``: a step of the chain that adds a layer and continues."""
    return [layer, *rest]


@sn.symbolize
def terminate(tail: Tail) -> list[Layer]:
    """The layers of a step that terminates (the classifier follows)."""
    return list(tail.layers)


def representation_bucket(size: int) -> int:
    """MetaQNN's representation-size bucket: 8 for sizes >= 8, 4 for 4..7, 1 for 1..3.

    Example:
        >>> [representation_bucket(s) for s in (32, 8, 7, 4, 3)]
        [8, 8, 4, 4, 1]
    """
    return 8 if size > 7 else 4 if size > 3 else 1


def _kernel_reason(kernel_size: int, bucket: int, size: int) -> str:
    return (
        f"kernel {kernel_size} must be smaller than the representation size bucket, "
        f"but it is {bucket} (size {size})"
    )


def legal_layers(
    layers: Sequence[Layer], image_size: int
) -> tuple[list[Layer], list[tuple[int, str]]]:
    """Applies MetaQNN's state-dependent legality rules to a layer sequence.

    Walks the layers with the state (previous kept layer type, representation
    size) and leaves out each layer whose transition is illegal there.

    Args:
        layers: The chosen layers, in order.
        image_size: Height (= width) of the input images.

    Returns:
        The kept layers and, for each left-out layer, ``(position, reason)``.

    Example:
        >>> kept, skipped = legal_layers([Conv(64, 5), Pool(5, 3), Pool(2, 2), FC(128)], 32)
        >>> kept
        [Conv(64, 5), Pool(5, 3)]
        >>> for position, reason in skipped:
        ...     print(position, reason)
        2 pooling must follow a convolution
        3 fully connected needs representation size bucket <= 4, but it is 8 (size 10)
    """
    kept: list[Layer] = []
    skipped: list[tuple[int, str]] = []
    previous, size = "start", image_size
    for position, layer in enumerate(layers):
        bucket = representation_bucket(size)
        reason = None
        if isinstance(layer, Conv):
            if layer.kernel_size >= bucket:
                reason = _kernel_reason(layer.kernel_size, bucket, size)
        elif isinstance(layer, Pool):
            if previous != "conv":
                reason = "pooling must follow a convolution"
            elif layer.kernel_size >= bucket:
                reason = _kernel_reason(layer.kernel_size, bucket, size)
        elif isinstance(layer, FC):
            if previous != "fc" and bucket > 4:
                reason = (
                    "fully connected needs representation size bucket <= 4, "
                    f"but it is {bucket} (size {size})"
                )
        elif not isinstance(layer, GAP):
            raise TypeError(f"`layers` must hold Conv, Pool, FC or GAP, but got {layer!r}")
        if reason is not None:
            skipped.append((position, reason))
            continue
        kept.append(layer)
        previous = type(layer).__name__.lower()
        if isinstance(layer, Pool):
            size = (size - layer.kernel_size) // layer.stride + 1
    return kept, skipped


@sn.symbolize
class MetaQNNNet(nn.Module):
    """A MetaQNN network: the legal layers of a sequence, then a linear softmax classifier.

    Shapes: ``[B, in_channels, image_size, image_size] -> [B, num_classes]`` (logits).

    Args:
        layers: Conv / Pool / FC / GAP specs in order; illegal ones are left out
            (see :func:`legal_layers`; ``self.skipped`` lists them).
        image_size: Height (= width) of the input images.
        in_channels: Channels of the input images.
        num_classes: Number of classes.

    Example:
        >>> import torch
        >>> net = MetaQNNNet([Conv(8, 3), Pool(5, 3), Conv(8, 3), Pool(3, 2), FC(16)], 32)
        >>> net(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
        >>> net.layers
        (Conv(8, 3), Pool(5, 3), Conv(8, 3), Pool(3, 2), FC(16))
    """

    def __init__(
        self,
        layers: Sequence[Layer],
        image_size: int = 32,
        in_channels: int = 3,
        num_classes: int = 10,
    ):
        super().__init__()
        self.specs: tuple[Layer, ...] = tuple(layers)
        kept, self.skipped = legal_layers(self.specs, image_size)
        self.layers: tuple[Layer, ...] = tuple(kept)
        modules: list[nn.Module] = []
        channels, size, features = in_channels, image_size, None
        for layer in kept:
            if isinstance(layer, Conv):
                k = layer.kernel_size
                modules += [nn.Conv2d(channels, layer.filters, k, padding=k // 2), nn.ReLU()]
                channels = layer.filters
            elif isinstance(layer, Pool):
                modules.append(nn.MaxPool2d(layer.kernel_size, layer.stride))
                size = (size - layer.kernel_size) // layer.stride + 1
            elif isinstance(layer, GAP):
                modules += [
                    nn.Conv2d(channels, num_classes, 1),
                    nn.ReLU(),
                    nn.AdaptiveAvgPool2d(1),
                    nn.Flatten(),
                ]
                features = num_classes
            else:
                if features is None:
                    modules.append(nn.Flatten())
                    features = channels * size * size
                modules += [nn.Linear(features, layer.units), nn.ReLU()]
                features = layer.units
        if features is None:
            modules.append(nn.Flatten())
            features = channels * size * size
        self.body = nn.Sequential(*modules)
        self.classifier = nn.Linear(features, num_classes)

    def extra_repr(self) -> str:
        skipped = f", skipped={[p for p, _ in self.skipped]}" if self.skipped else ""
        return f"layers={list(self.layers)}{skipped}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.body(x))


def _tails(fc_sizes: Sequence[int], max_fc: int, room: int) -> list[Tail]:
    """Tails with at most ``room`` layers: none, GAP, and runs of at most ``max_fc``
    fully connected layers of non-increasing width (widest first)."""
    tails = [Tail()]
    if room >= 1:
        tails.append(Tail((GAP(),)))
    widths = sorted(fc_sizes, reverse=True)
    runs: list[list[int]] = [[w] for w in widths]
    for _ in range(min(max_fc, room)):
        tails += [Tail(tuple(FC(w) for w in run)) for run in runs]
        runs = [[*run, w] for run in runs for w in widths if w <= run[-1]]
    return tails


@register("metaqnn")
@validates(PARAMETER_CONSTRAINTS)
def metaqnn(
    *,
    max_layers: int = 18,
    image_size: int = 32,
    in_channels: int = 3,
    num_classes: int = 10,
    conv_filters: Sequence[int] = CONV_FILTERS,
    conv_kernel_sizes: Sequence[int] = CONV_KERNEL_SIZES,
    pools: Sequence[tuple[int, int]] = POOLS,
    fc_sizes: Sequence[int] = FC_SIZES,
    max_fc: int = 2,
) -> sn.Call:
    """The MetaQNN space (defaults: the paper's CIFAR-10 settings, 18 layers at most).

    Decisions at step ``i`` (names): ``layer{i}`` (``add_layer`` / ``terminate``),
    then either ``layer{i}.type`` (a convolution or one of the pools; step 0 has
    only convolutions), ``layer{i}.filters`` and ``layer{i}.kernel_size`` for a
    convolution, followed by step ``i + 1``; or ``layer{i}.tail``.

    Args:
        max_layers: Most layers before the classifier (the paper: 18 for CIFAR-10,
            12 for SVHN and MNIST).
        image_size: Height (= width) of the input images.
        in_channels: Channels of the input images.
        num_classes: Number of classes.
        conv_filters: Candidate numbers of filters (smaller ones make fast tests).
        conv_kernel_sizes: Candidate square kernel sizes (odd).
        pools: Candidate ``(kernel_size, stride)`` pairs of max pooling.
        fc_sizes: Candidate widths of fully connected layers.
        max_fc: Most fully connected layers in a row.

    Returns:
        A symbolic ``MetaQNNNet(...)`` call: a space to encode and materialise.

    Example:
        >>> import random, torch, symbolic_nas as sn
        >>> codec = sn.encode(metaqnn(max_layers=4, conv_filters=(8, 16), fc_sizes=(32, 16)))
        >>> codec.num_decisions
        19
        >>> net = codec.materialize(codec.random_tokens(random.Random(0)))
        >>> net(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """
    pools = tuple((int(k), int(s)) for k, s in pools)

    rest: list[Layer] = []  # step max_layers: terminate with the classifier only
    for i in reversed(range(max_layers)):
        conv = Conv(
            filters=sn.oneof(
                list(conv_filters), name=f"layer{i}.filters", hints={"share": "filters"}
            ),
            kernel_size=sn.oneof(
                list(conv_kernel_sizes),
                name=f"layer{i}.kernel_size",
                hints={"share": "kernel_size"},
            ),
        )
        layer: Layer = conv
        if i:
            candidates: list[Layer] = [conv, *(Pool(k, s) for k, s in pools)]
            layer = sn.oneof(candidates, name=f"layer{i}.type", hints={"share": "layer_type"})
        tails = _tails(fc_sizes, max_fc, max_layers - i)
        stop = terminate(sn.oneof(tails, name=f"layer{i}.tail", hints={"share": "tail"}))
        rest = sn.oneof(
            [add_layer(layer, rest), stop], name=f"layer{i}", hints={"share": "add_or_terminate"}
        )
    # The space is a symbolic call; type checkers see the net it stands for.
    net = MetaQNNNet(rest, image_size=image_size, in_channels=in_channels, num_classes=num_classes)
    return cast(sn.Call, net)


@register_example("metaqnn")
def _example(
    *, image_size: int = 32, in_channels: int = 3, num_classes: int = 10, **_: object
) -> Example:
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(2, in_channels, image_size, image_size, generator=generator)
    return Example(inputs=(image,), output_shape=(2, num_classes))
