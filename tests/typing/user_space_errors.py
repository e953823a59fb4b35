"""Mistakes in a space that mypy must report: each marked line, with its error code.

tests/test_typing.py type-checks this file and compares mypy's errors with the
``# E: <code>`` marks, so placeholders typed as ``Any`` (which would let every line
pass) fail the test.
"""

from __future__ import annotations

from user_space import Block, Net

import symbolic_nas as sn

Block(1, 16, sn.oneof(["3x3", "5x5"]), "relu", [])  # E: arg-type
Block(1, 16, 3, sn.intv(0, 2), [])  # E: arg-type
Block(1, 16, 3, "relu", sn.subset(["a", "b"]))  # E: list-item
Net(sn.manyof(2, [1, 2]), 16)  # E: list-item
Net([], sn.floatv(8.0, 16.0))  # E: arg-type
name: str = sn.permutate(["a", "b"])  # E: assignment
sn.oneof(3)  # E: call-overload
sn.subset([0, 1], anchor=[1])  # E: arg-type
width: str = sn.materialize(Net([], 16), [0])  # E: assignment
named: str = sn.oneof({"small": 3, "large": 5})  # E: assignment
