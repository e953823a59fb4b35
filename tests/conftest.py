"""Suite-wide test settings.

Torch runs with one intra-op thread during every test: on a 2-core CI box two
threads per process thrash (measured here: contract checks 11 s vs 218 s), and
spawned workers pin their own threads anyway. The count is set before each test
and restored after it, so a test that changes it cannot slow down the next ones.

Tests marked ``gpu`` need CUDA; without it they are skipped (reported as such), so
the default run passes on a CPU machine and runs them on a GPU machine.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skips the tests marked ``gpu`` when CUDA is not available."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA (marked gpu)")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)
