"""Quickstart: a model written once with placeholders, encoded, sampled and built.

Run: python examples/quickstart.py
"""

from __future__ import annotations

import random

import torch
from torch import nn

import symbolic_nas as sn


@sn.symbolize
class Block(nn.Module):
    """Convolution + activation. Input [B, cin, H, W] -> output [B, cout, H, W]."""

    def __init__(self, cin: int, cout: int, kernel: int, act: str):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2)
        self.act = nn.ReLU() if act == "relu" else nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


@sn.symbolize
class Net(nn.Module):
    """Blocks, global average pooling, a linear head. [B, 1, H, W] -> logits [B, classes]."""

    def __init__(self, blocks: list, width: int, num_classes: int = 10):
        super().__init__()
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x).mean((2, 3)))


def main() -> None:
    space = sn.oneof(
        [
            Net([Block(1, 16, sn.oneof([3, 5]), sn.oneof(["relu", "gelu"]))], 16),
            Net([Block(1, 16, 3, "relu"), Block(16, 32, sn.oneof([3, 5, 7]), "relu")], 32),
        ]
    )
    codec = sn.encode(space)
    print(f"space: {codec.num_decisions} decisions, {codec.space_size} architectures")
    for d in codec.decisions:
        parent = (
            "" if d.parent is None else f"  (active when decision {d.parent} = {d.parent_value})"
        )
        print(f"  [{d.index}] {d.name}: {list(d.labels)}{parent}")

    rng = random.Random(0)
    for _ in range(3):
        tokens = codec.random_tokens(rng)
        dna = codec.from_tokens(tokens)
        assert codec.to_tokens(dna) == tokens
        model = sn.materialize(space, dna)
        out = model(torch.randn(2, 1, 28, 28))
        params = sum(p.numel() for p in model.parameters())
        print(
            f"tokens {tokens} -> {dna} -> {type(model).__name__} with {params:,} parameters, "
            f"output {tuple(out.shape)}: {codec.decode(tokens)}"
        )


if __name__ == "__main__":
    main()
