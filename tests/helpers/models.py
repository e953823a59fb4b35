"""Importable model classes for the tests (whole-module pickling needs importable classes)."""

from __future__ import annotations

import torch
from torch import nn

import symbolic_nas as sn


@sn.symbolize
class Block(nn.Module):
    """Conv + activation."""

    def __init__(self, cin: int, cout: int, kernel: int, act: str):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2)
        self.act = nn.ReLU() if act == "relu" else nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


@sn.symbolize
class Net(nn.Module):
    """Blocks, global average pooling and a linear head."""

    def __init__(self, blocks: list, width: int, num_classes: int = 10):
        super().__init__()
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x).mean((2, 3)))


@sn.symbolize
def conv_bn(cin: int, cout: int, kernel: int) -> nn.Module:
    """A function returning a module."""
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=kernel // 2), nn.BatchNorm2d(cout))


@sn.symbolize
class Chain(nn.Module):
    """Takes its layers as *args."""

    def __init__(self, *layers: nn.Module, scale: float = 1.0):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x * self.scale


def issue_space():
    """The space of the foundation issue's example."""
    return sn.oneof(
        [
            Net([Block(1, 16, sn.oneof([3, 5]), sn.oneof(["relu", "gelu"]))], 16),
            Net([Block(1, 16, 3, "relu"), Block(16, 32, sn.oneof([3, 5, 7]), "relu")], 32),
        ]
    )
