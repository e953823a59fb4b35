"""The main job: REINFORCE searches an annotated CNN on the embedded MNIST digits (CPU).

An ordinary PyTorch CNN is turned into a search space with ``sn.annotate``: each
convolution may keep its 3x3 kernel or become a 5x5, a 1x1 or a depthwise-separable
convolution, each activation may be ReLU, GELU, SiLU or Tanh, and each pooling layer
max or average pooling. Each child is trained for two epochs on the 4,000 training
digits (downsampled to 14x14 so that a child trains in seconds on one CPU thread),
selected on the 500 validation digits, and scored once on the 500 held-out test
digits (never used for selection). TensorBoard logs go to ``<run-dir>/tensorboard``.

Run (about a minute with 2 workers on an idle 2-core CPU)::

    python examples/mnist_search.py                 # runs/mnist, 2 workers, 96 trials
    python examples/mnist_search.py --trials 160    # continues the same run to 160 trials

Running it again continues the run in ``--run-dir`` (after a crash too); use a new
``--run-dir`` for a new search. The same search from the command line::

    symbolic-nas search examples.mnist_search:space --evaluator examples.mnist_search:Evaluate \\
        --algorithm reinforce --num-trials 96 --workers 2 --run-dir runs/mnist-cli
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import symbolic_nas as sn
from symbolic_nas.training import Trainer
from symbolic_nas.training.data import load_mnist5k


class DigitNet(nn.Module):
    """A small CNN for 14x14 digits, written without placeholders. [B, 1, 14, 14] -> [B, 10]."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.act1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)  # 14 -> 7
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.act2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)  # 7 -> 3
        self.conv3 = nn.Conv2d(32, 32, 3, padding=1)
        self.act3 = nn.ReLU()
        self.head = nn.Linear(32 * 3 * 3, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.act1(self.conv1(x)))
        x = self.pool2(self.act2(self.conv2(x)))
        x = self.act3(self.conv3(x))
        return self.head(x.flatten(1))


def conv5x5(conv: nn.Conv2d) -> nn.Conv2d:
    return nn.Conv2d(conv.in_channels, conv.out_channels, 5, padding=2)


def conv1x1(conv: nn.Conv2d) -> nn.Conv2d:
    return nn.Conv2d(conv.in_channels, conv.out_channels, 1)


def separable3x3(conv: nn.Conv2d) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(conv.in_channels, conv.in_channels, 3, padding=1, groups=conv.in_channels),
        nn.Conv2d(conv.in_channels, conv.out_channels, 1),
    )


def gelu(_: nn.Module) -> nn.Module:
    return nn.GELU()


def silu(_: nn.Module) -> nn.Module:
    return nn.SiLU()


def tanh(_: nn.Module) -> nn.Module:
    return nn.Tanh()


def avgpool(pool: nn.MaxPool2d) -> nn.Module:
    return nn.AvgPool2d(pool.kernel_size)


def space() -> Any:
    """The annotated space: 3 convolutions x 4, 3 activations x 4, 2 poolings x 2.

    Kept submodules keep the base model's weights, so the base model is initialised
    with a fixed seed: every call gives the same space (and a resumed run the same
    children).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        base = DigitNet()
    return sn.annotate(
        base,
        {
            nn.Conv2d: [sn.keep, conv5x5, conv1x1, separable3x3],
            nn.ReLU: [sn.keep, gelu, silu, tanh],
            nn.MaxPool2d: [sn.keep, avgpool],
        },
        example_inputs=torch.zeros(1, 1, 14, 14),
    )


def digits14() -> tuple:
    """The embedded digits' (train, val, test) splits, average-pooled to 14x14."""
    splits = load_mnist5k(split_seed=0, normalize=True)
    return tuple((F.avg_pool2d(x, 2), y) for x, y in (splits.train, splits.val, splits.test))


class Evaluate:
    """Trains a child briefly (``sn.Trainer``); reports validation and test accuracy.

    The reward is the final validation accuracy; ``test_accuracy`` is measured on
    the held-out split for reporting only.

    Args:
        epochs: Training epochs per child (batches of 64 digits).
    """

    def __init__(self, *, epochs: int = 2) -> None:
        self.trainer = Trainer(data=digits14, epochs=epochs, batch_size=64, lr=3e-3, seed=0)

    def __call__(self, model: nn.Module) -> dict[str, Any]:
        metrics = self.trainer(model)
        metrics["test_accuracy"] = self.trainer.test_accuracy(model)
        metrics["parameters"] = sum(p.numel() for p in model.parameters())
        return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=96, help="trials in all (default 96)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--run-dir", default="runs/mnist", help="run directory (runs/mnist)")
    parser.add_argument("--algorithm", default="reinforce", help="search algorithm (reinforce)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    search_space = space()
    result = sn.search(
        search_space,
        Evaluate(),
        algorithm=args.algorithm,
        num_trials=args.trials,
        workers=args.workers,
        run_dir=args.run_dir,
        seed=args.seed,
        resume=True,
    )
    best = result.best
    if best is None:
        print(f"no trial completed ({len(result.failed)} failed)")
        return 1
    print(
        f"{len(result.trials)} trials ({len(result.failed)} failed) in {args.run_dir}; "
        f"TensorBoard: symbolic-nas tensorboard {args.run_dir}"
    )
    print(f"best: trial {best.id}, tokens {best.tokens}")
    for name, label in best.choice_labels().items():
        print(f"  {name}: {label}")
    print(f"validation accuracy {best.metrics['accuracy']:.3f}")
    print(f"held-out test accuracy {best.metrics['test_accuracy']:.3f}")
    print(sn.materialize(search_space, best.dna))
    return 0


if __name__ == "__main__":
    sys.exit(main())
