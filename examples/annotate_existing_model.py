"""Turn an existing model into a search space without touching its source.

Run: python examples/annotate_existing_model.py
"""

from __future__ import annotations

import random

import torch
from torch import nn

import symbolic_nas as sn


class TinyResNet(nn.Module):
    """A user's own model, written without placeholders. [B, 1, H, W] -> logits [B, 10]."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 16, 3, padding=1)
        self.layer1 = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.ReLU())
        self.layer2 = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        x = x + self.layer1(x)
        x = x + self.layer2(x)
        return self.head(x.mean((2, 3)))


def wider_kernel(conv: nn.Conv2d) -> nn.Conv2d:
    return nn.Conv2d(conv.in_channels, conv.out_channels, 5, conv.stride, 2)


def depthwise_separable(conv: nn.Conv2d) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(conv.in_channels, conv.in_channels, 3, padding=1, groups=conv.in_channels),
        nn.Conv2d(conv.in_channels, conv.out_channels, 1),
    )


def main() -> None:
    net = TinyResNet()  # imagine it is trained: kept submodules keep their weights
    space = sn.annotate(
        net,
        {
            "layer*.0": [sn.keep, wider_kernel, depthwise_separable],
            # A dict names the choices (labels in reports and TensorBoard).
            nn.Linear: {"plain": sn.keep, "dropout": lambda fc: nn.Sequential(nn.Dropout(0.2), fc)},
        },
        example_inputs=torch.zeros(1, 1, 28, 28),  # checks every swap against recorded shapes
    )
    codec = sn.encode(space)
    for d in codec.decisions:
        print(f"decision {d.name!r}: {list(d.labels)}")
    for seed in range(3):
        tokens = codec.random_tokens(random.Random(seed))
        model = codec.materialize(tokens)
        same_stem = torch.equal(model.stem.weight, net.stem.weight)
        print(
            f"{codec.labels(tokens)} -> output {tuple(model(torch.randn(2, 1, 28, 28)).shape)}, "
            f"stem weights kept: {same_stem}"
        )


if __name__ == "__main__":
    main()
