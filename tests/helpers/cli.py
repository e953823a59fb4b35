"""Spaces and evaluators for the command-line tests (named as ``tests.helpers.cli:NAME``)."""

from __future__ import annotations

from typing import Any

import symbolic_nas as sn


def choice_space() -> dict[str, Any]:
    """Two named decisions."""
    return {"kernel": sn.oneof([3, 5, 7]), "act": sn.oneof(["relu", "gelu"])}


@sn.evaluator(input="tokens")
def always_fails(tokens: list[int]) -> float:
    raise ValueError(f"no reward for {tokens}")


def kernel_reward(arch: dict[str, Any]) -> dict[str, Any]:
    return {"reward": float(arch["kernel"]), "width": 16}
