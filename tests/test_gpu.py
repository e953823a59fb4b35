"""What only CUDA exercises: mixed precision (bf16, and fp16 with its gradient scaler),
channels-last, and a real CUDA out-of-memory error inside a search.

Every test is marked ``gpu``: without CUDA they are skipped (tests/conftest.py); on a GPU
machine, ``python -m pytest -m gpu`` runs them (about a minute).
"""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
from torch import nn

import symbolic_nas as sn
from symbolic_nas.storage.trial import TrialStatus
from symbolic_nas.training import Trainer
from tests.helpers.tuner import ScriptedAlgorithm

pytestmark = pytest.mark.gpu

GIB = 1 << 30


class _ProbeNet(nn.Module):
    """A small MNIST CNN that records, at each forward, the dtype its first convolution
    computed in and whether that activation was channels-last."""

    def __init__(self) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.conv1 = nn.Conv2d(1, 8, 3, stride=2)
            self.conv2 = nn.Conv2d(8, 16, 3, stride=2)
            self.bn = nn.BatchNorm2d(16)
            self.fc = nn.Linear(16 * 6 * 6, 10)
        self.seen: set[tuple[torch.dtype, bool]] = set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x)
        self.seen.add((h.dtype, h.is_contiguous(memory_format=torch.channels_last)))
        h = torch.relu(self.bn(self.conv2(torch.relu(h))))
        return self.fc(h.flatten(1))


class _CountingScaler(torch.amp.GradScaler):
    """torch.amp.GradScaler that keeps a list of its instances and counts its steps."""

    made: ClassVar[list[_CountingScaler]] = []

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.steps = 0
        _CountingScaler.made.append(self)

    def step(self, optimizer, *args, **kwargs):
        self.steps += 1
        return super().step(optimizer, *args, **kwargs)


@pytest.fixture
def scalers(monkeypatch: pytest.MonkeyPatch) -> list[_CountingScaler]:
    """The gradient scalers the Trainer makes during the test."""
    monkeypatch.setattr(_CountingScaler, "made", [])
    monkeypatch.setattr(torch.amp, "GradScaler", _CountingScaler)
    return _CountingScaler.made


def _trainer(**options) -> Trainer:
    return Trainer(epochs=2, batch_size=64, max_batches_per_epoch=30, lr=3e-3, seed=0, **options)


def test_auto_mixed_precision_on_cuda_is_bf16_without_a_scaler(scalers):
    if not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    model = _ProbeNet()
    metrics = _trainer()(model)  # device, mixed precision and channels-last: "auto"
    assert metrics["device"] == f"cuda:{torch.cuda.current_device()}"
    assert {dtype for dtype, _ in model.seen} == {torch.bfloat16}
    assert scalers == []
    assert all(p.dtype == torch.float32 for p in model.parameters())  # fp32 master weights
    assert metrics["val_accuracy"][-1] > 0.75  # chance is 0.1; ~0.9 on the CPU in fp32


def test_fp16_mixed_precision_steps_through_the_gradient_scaler(scalers, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    model = _ProbeNet()
    metrics = _trainer()(model)
    assert {dtype for dtype, _ in model.seen} == {torch.float16}
    (scaler,) = scalers
    assert scaler.steps == 2 * 30  # every optimizer step went through the scaler
    assert 0 < scaler.get_scale() < float("inf")
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(v > 0 for v in metrics["train_loss"])
    assert metrics["val_accuracy"][-1] > 0.75
    assert _trainer().test_accuracy(model) > 0.75


def test_channels_last_is_the_cuda_default_for_images_and_can_be_turned_off():
    model = _ProbeNet()
    _trainer(mixed_precision=False)(model)
    assert model.seen == {(torch.float32, True)}
    assert model.conv2.weight.is_contiguous(memory_format=torch.channels_last)
    plain = _ProbeNet()
    _trainer(mixed_precision=False, channels_last=False)(plain)
    assert plain.seen == {(torch.float32, False)}
    assert not plain.conv2.weight.is_contiguous(memory_format=torch.channels_last)


@sn.symbolize
class _Small(nn.Module):
    """Conv, global average pooling, linear head: [B, 1, 28, 28] -> [B, 10]."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, width, 3, stride=2)
        self.fc = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


@sn.symbolize
class _TooWide(nn.Module):
    """Its forward copies each image ``copies`` times: 2^22 copies of a batch of 64 need
    about 840 GB, more than any GPU has."""

    def __init__(self, copies: int = 1 << 22) -> None:
        super().__init__()
        self.copies = copies
        self.fc = nn.Linear(784, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1).repeat(1, self.copies)[:, :784])


def test_a_model_out_of_cuda_memory_fails_its_trial_and_the_search_goes_on():
    result = sn.search(
        sn.oneof([_Small(), _TooWide()]),
        Trainer(epochs=1, batch_size=64, max_batches_per_epoch=3, seed=0),
        algorithm=ScriptedAlgorithm([[0], [1], [0]]),
        num_trials=3,
        tensorboard=False,
        progress=False,
    )
    completed, failed = TrialStatus.COMPLETED, TrialStatus.FAILED
    assert [t.status for t in result.trials] == [completed, failed, completed]
    assert result.trials[1].error.startswith("OutOfMemoryError: CUDA out of memory")
    assert all(t.metrics["device"].startswith("cuda") for t in (result.trials[0], result.trials[2]))


@sn.evaluator(input="tokens")
def _hold_a_gib(tokens: list[int]) -> float:
    """Holds 1 GiB on the GPU; token 1 then asks for 1 PiB (a CUDA out-of-memory error)."""
    held = torch.empty(GIB, dtype=torch.uint8, device="cuda")
    if tokens[0] == 1:
        torch.empty(1 << 50, dtype=torch.uint8, device="cuda")
    return float(held.numel() // GIB)


def test_after_a_cuda_out_of_memory_error_the_cache_is_given_back():
    def search(token: int) -> sn.SearchResult:
        return sn.search(
            sn.oneof([0, 1]),
            _hold_a_gib,
            algorithm=ScriptedAlgorithm([[token]]),
            num_trials=1,
            tensorboard=False,
            progress=False,
        )

    torch.cuda.empty_cache()
    baseline = torch.cuda.memory_reserved()
    assert search(0).trials[0].status == TrialStatus.COMPLETED
    # The freed GiB stays in PyTorch's cache after a trial that went well...
    assert torch.cuda.memory_reserved() - baseline >= GIB
    failed = search(1).trials[0]
    assert failed.status == TrialStatus.FAILED and failed.error.startswith(
        "OutOfMemoryError: CUDA out"
    )
    # ... but an out-of-memory failure empties the cache (its tensors died with the trial).
    assert torch.cuda.memory_reserved() - baseline < GIB
