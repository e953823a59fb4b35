"""A small shared-weight space, data and a driver to SIGKILL (``python -m``)."""

from __future__ import annotations

import sys

import torch
from torch import nn

import symbolic_nas as sn


@sn.symbolize
class SharedNet(nn.Module):
    """A stem, one searched convolution with batch norm, a head: [B, 1, 8, 8] -> [B, 2]."""

    def __init__(self, kernel: int, width: int, act: str = "relu"):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.conv = nn.Conv2d(4, width, kernel, padding=kernel // 2)
        self.bn = nn.BatchNorm2d(width)
        self.act = nn.ReLU() if act == "relu" else nn.Tanh()
        self.head = nn.Linear(width, 2)
        self.built_on = self.stem.weight.device.type  # what the build allocated

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.bn(self.conv(self.stem(x)))).mean((2, 3)))


def space() -> sn.Call:
    return SharedNet(sn.oneof([1, 3]), sn.oneof([4, 8]), sn.oneof(["relu", "tanh"]))


def data() -> tuple:
    """Bright or dark 8x8 images (two classes), 192 to train on and 64 held out."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (256,), generator=g)
    x = torch.randn(256, 1, 8, 8, generator=g) + 0.2 * (y.float() * 2 - 1)[:, None, None, None]
    return (x[:192], y[:192]), (x[192:], y[192:]), (x[192:], y[192:])


def trainer(**kwargs) -> sn.Trainer:
    return sn.Trainer(data=data, batch_size=16, optimizer="sgd", lr=0.05, eval_batch_size=32,
                      **kwargs)  # fmt: skip


if __name__ == "__main__":  # the driver the resume test SIGKILLs
    run_dir, num_trials = sys.argv[1], int(sys.argv[2])
    shared = sn.WeightSharing(trainer(), train_steps=3)
    sn.search(space(), shared, algorithm="random", num_trials=num_trials, seed=0,
              run_dir=run_dir, resume=True, checkpoint_interval=0.0, tensorboard=False,
              progress=False)  # fmt: skip
