"""Importable helpers of the result-reading and weight-keeping tests.

Spawned worker processes unpickle the space and the evaluator by reference, so
they live in this module (``tests.helpers.results``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

import symbolic_nas as sn


@sn.symbolize
class Tiny(nn.Module):
    """One linear layer of a searched width."""

    def __init__(self, width: int, act: str = "relu") -> None:
        super().__init__()
        self.fc = nn.Linear(2, width)
        self.act = act


def tiny_space() -> Any:
    """Six architectures: a width and an activation name."""
    return Tiny(sn.oneof([2, 3, 4]), act=sn.oneof(["relu", "gelu"]))


def fill_weights(model: Tiny) -> dict[str, Any]:
    """ "Trains" ``model``: its weights become its reward (distinct per trial, seeded)."""
    reward = float(model.fc.out_features) + float(torch.rand(()))
    with torch.no_grad():
        model.fc.weight.fill_(reward)
    return {"reward": reward, "out_features": model.fc.out_features, "curve": [0.1, 0.2]}
