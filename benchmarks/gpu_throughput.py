"""GPU throughput of children trained by the tuner (needs a CUDA GPU).

1. **Tuner vs hand-written loop.** One CNN trained by ``sn.Trainer`` inside a tuner
   worker process pinned to the GPU, against a hand-written training loop for the
   same model (same initial weights, batch size, optimizer, bf16 autocast and
   channels-last) in this process. Goal: the tuner's child reaches >= 0.95x the
   hand loop's training images per second.
2. **Packing.** The same set of small children (the MNIST example's space) trained
   one at a time by one worker on the GPU, then by several workers sharing it.
   Goal: >= 2x the trials per second.

Run: python benchmarks/gpu_throughput.py [--epochs 30] [--repeats 3] [--trials 96] [--pack 4 8]
(``--skip-loop`` or ``--skip-packing`` runs one half).
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

sys.path.append(str(pathlib.Path(__file__).resolve().parents[1]))  # For `examples`.

import symbolic_nas as sn
from examples import mnist_search
from symbolic_nas.training.data import load_mnist5k
from symbolic_nas.tuner.loop import trial_seed

BATCH = 256


@sn.symbolize
class GpuNet(nn.Module):
    """A CNN big enough to keep a GPU busy: [B, 1, 28, 28] -> [B, 10]."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.Conv2d(2 * width, 4 * width, 3, stride=2, padding=1),
            nn.BatchNorm2d(4 * width),
            nn.ReLU(),
        )
        self.head = nn.Linear(4 * width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean((2, 3)))


def gpu_space() -> Any:
    """A one-architecture space (the tuner needs a decision): GpuNet with width 64."""
    return GpuNet(sn.oneof([64]))


def hand_loop(epochs: int, seed: int) -> float:
    """A plain training loop; returns training images per second (validation excluded)."""
    device = torch.device("cuda")
    splits = load_mnist5k(split_seed=0, normalize=True)
    x, y = (t.to(device) for t in splits.train)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = sn.materialize(gpu_space(), [0])
    model = model.to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    torch.cuda.synchronize()
    start = time.perf_counter()
    images = 0
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(y), generator=generator).to(device)
        for i in range(0, len(y), BATCH):
            index = order[i : i + BATCH]
            xb = x.index_select(0, index).contiguous(memory_format=torch.channels_last)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = F.cross_entropy(model(xb), y.index_select(0, index))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            images += len(index)
        torch.cuda.synchronize()
    return images / (time.perf_counter() - start)


def tuner_children(epochs: int, repeats: int) -> list[dict[str, Any]]:
    """Trains the same child ``repeats`` times in one tuner worker pinned to GPU 0."""
    trainer = sn.Trainer(epochs=epochs, batch_size=BATCH, lr=1e-3)
    result = sn.search(
        gpu_space(),
        trainer,
        algorithm="random",
        num_trials=repeats,
        executor="process",
        workers=1,
        gpus=["0"],
        progress=False,
    )
    errors = [t.error for t in result.trials if t.status != sn.TrialStatus.COMPLETED]
    assert not errors, errors
    return [t.metrics for t in result.trials]


def packed(workers: int, trials: int) -> tuple[float, float, list[str]]:
    """Trains ``trials`` MNIST-example children with ``workers`` processes on the GPU
    (the tuner pins them to the visible GPUs round-robin).

    Returns trials per second over the span of the trials (worker start-up excluded),
    the same including start-up, and the devices the children reported.
    """
    start = time.perf_counter()
    result = sn.search(
        mnist_search.space(),
        mnist_search.Evaluate(),
        algorithm="random",
        num_trials=trials,
        executor="process",
        workers=workers,
        seed=0,
        progress=False,
    )
    wall = time.perf_counter() - start
    assert not result.failed, [t.error for t in result.failed]
    first = min(t.started for t in result.trials)
    last = max(t.started + t.duration for t in result.trials)
    return (
        trials / (last - first),
        trials / wall,
        sorted({t.metrics["device"] for t in result.trials}),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trials", type=int, default=96)
    parser.add_argument("--pack", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--skip-loop", action="store_true")
    parser.add_argument("--skip-packing", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("this benchmark needs a CUDA GPU")
    print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")

    if not args.skip_loop:
        children = tuner_children(args.epochs, args.repeats)
        tuner_rates = [m["images_per_second"] for m in children]
        hand_rates = [hand_loop(args.epochs, trial_seed(0, i)) for i in range(args.repeats)]
        print(f"child device: {children[0]['device']}, val accuracy {children[-1]['accuracy']:.3f}")
        print("tuner child images/s:", ", ".join(f"{r:,.0f}" for r in tuner_rates))
        print("hand loop images/s:  ", ", ".join(f"{r:,.0f}" for r in hand_rates))
        ratio = statistics.median(tuner_rates) / statistics.median(hand_rates)
        print(f"tuner / hand loop (medians): {ratio:.3f}x  (goal >= 0.95x)")

    if not args.skip_packing:
        one_span, one_wall, devices = packed(1, args.trials)
        print(f"packing: {args.trials} children on {devices}")
        print(f"1 worker:  {one_span:.2f} trials/s ({one_wall:.2f} with start-up)")
        for workers in args.pack:
            span, wall = packed(workers, args.trials)[:2]
            print(
                f"{workers} workers: {span:.2f} trials/s ({wall:.2f} with start-up): "
                f"{span / one_span:.2f}x ({wall / one_wall:.2f}x with start-up)  (goal >= 2x)"
            )


if __name__ == "__main__":
    main()
