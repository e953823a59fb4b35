"""Suite-wide test settings.

Torch runs with one intra-op thread in the test process: on a 2-core CI box two
threads per process thrash (measured here: contract checks 11 s vs 218 s), and
spawned workers pin their own threads anyway.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
