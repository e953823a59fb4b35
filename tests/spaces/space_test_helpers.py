"""Helpers for the space tests: run torch on one thread (restored afterwards).

On a loaded 2-core machine torch's default two intra-op threads make small
forward calls many times slower; one thread keeps these tests fast and steady.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Autouse in every module that imports it: torch uses one thread during each test."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
