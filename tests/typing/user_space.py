"""A user's space written with every placeholder: mypy must find no error here.

tests/test_typing.py type-checks this file with scripts/typecheck.py (the package's
own mypy settings) and runs it. Placeholders are typed as the value they stand for,
so each call below is checked against the annotated constructor it feeds.
"""

from __future__ import annotations

import random

import torch
from torch import nn
from typing_extensions import assert_type

import symbolic_nas as sn


@sn.symbolize
class Block(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, act: str, inputs: list[int]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2)
        self.act = nn.ReLU() if act == "relu" else nn.GELU()
        self.inputs = inputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


@sn.symbolize
class Net(nn.Module):
    def __init__(self, blocks: list[Block], width: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*blocks)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.blocks(x).mean((2, 3))))


def block(cin: int, cout: int, index: int) -> Block:
    """One block whose kernel, activation and inputs are searched."""
    return Block(
        cin,
        cout,
        sn.oneof([3, 5]),
        sn.oneof(["relu", "gelu"]),
        sn.subset(list(range(index)), anchor=index) if index else [],
    )


space = sn.oneof(
    [
        Net([block(1, 16, 0)], 16),
        Net([block(1, 8, 0), block(8, 16, 1)], 16, dropout=sn.floatv(0.0, 0.5)),
        Net([Block(1, 8, sn.intv(1, 3), "relu", [])], 8),
    ]
)
assert_type(space, Net)
assert_type(sn.manyof(2, ["conv", "pool", "skip"]), list[str])
assert_type(sn.permutate([0, 1, 2]), list[int])
assert_type(sn.floatv(1e-4, 1e-1, scale="log"), float)

Linear = sn.symbolize(nn.Linear)  # a published class: a factory of plain nn.Linear
head = Linear(16, sn.oneof([10, 20]))
assert_type(head, nn.Linear)

codec = sn.encode(space)
tokens = codec.random_tokens(random.Random(0))
assert_type(tokens, list[int])
model = sn.materialize(space, tokens)
assert_type(model, Net)
logits: torch.Tensor = model(torch.randn(2, 1, 8, 8))

annotated = sn.annotate(
    model, {nn.Conv2d: [sn.keep, lambda conv: nn.Conv2d(conv.in_channels, conv.out_channels, 1)]}
)
swapped = sn.materialize(annotated, [1] * sn.encode(annotated).num_decisions)
assert_type(swapped, nn.Module)

# Named candidates are typed as their values; a module class is a candidate too.
kernel = sn.oneof({"small": 3, "large": 5})
assert_type(kernel, int)
named = sn.annotate(model, {nn.ReLU: {"relu": sn.keep, "gelu": nn.GELU}})
