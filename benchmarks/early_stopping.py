"""Early stopping on real training: the main job's search with and without each pruner.

The search of ``examples/mnist_search.py`` (REINFORCE over the annotated digit CNN) on
the embedded digits at 14x14, every child trained for ``--epochs`` epochs (5) on a
subset of ``--train`` training digits (1,000 of the 4,000, to fit a shared 2-core
machine), selected on the 500 validation digits. For each seed, the same algorithm and
number of trials run once without a pruner and once with each of ``median``, ``asha``
and ``hyperband`` (and ASHA once more telling the algorithm nothing for a pruned trial,
``pruned_reward=None``, against the default ``"last"``), and once with no pruner but
the multi-fidelity schedule ``successive_halving`` over the same algorithm (budgets of
1 and ``--epochs`` epochs, η = ``--epochs``: the best fifth of the 1-epoch trials is
trained again, as new trials, for all epochs; its pick is the best trial at the largest
budget reached). Reported per configuration:
wall time, epochs trained in all (the machine-independent cost), trials pruned, and the
held-out test accuracy of the pick (the best completed trial, scored once on the 500
test digits that no search saw).

Goal (issue 11): ASHA reaches the un-pruned pick's accuracy (within its seed-to-seed
spread) in at most 40% of its wall time.

Run::

    nice -n 5 python benchmarks/early_stopping.py                # the full run (~15 min)
    python benchmarks/early_stopping.py --quick                  # a smoke test (seconds)
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import symbolic_nas as sn  # noqa: E402
from examples.mnist_search import space  # noqa: E402
from symbolic_nas.training.data import load_mnist5k  # noqa: E402

CONFIGS = ("none", "median", "asha", "hyperband", "asha-no-signal", "successive-halving")


class Digits:
    """The digits at 14x14 with the first ``train`` training digits (picklable)."""

    def __init__(self, train: int) -> None:
        self.train = train

    def __call__(self) -> tuple:
        splits = load_mnist5k(split_seed=0, normalize=True)
        x, y = splits.train
        pooled = [(F.avg_pool2d(x, 2)[: self.train], y[: self.train])]
        pooled += [(F.avg_pool2d(x, 2), y) for x, y in (splits.val, splits.test)]
        return tuple(pooled)


class Evaluate:
    """Trains a child with ``sn.Trainer`` (which reports every epoch); a child that
    completes is also scored on the held-out test digits (for the pick only)."""

    def __init__(self, *, epochs: int, train: int) -> None:
        self.trainer = sn.Trainer(data=Digits(train), epochs=epochs, batch_size=64, lr=3e-3, seed=0)

    def __call__(self, model: nn.Module) -> dict[str, Any]:
        metrics = self.trainer(model)
        metrics["test_accuracy"] = self.trainer.test_accuracy(model)
        return metrics


def pruner_of(config: str, epochs: int) -> tuple[Any, Any]:
    """The pruner and the pruned_reward policy of a configuration."""
    if config in ("none", "successive-halving"):
        return None, "last"
    if config == "median":
        return sn.pruners.MedianPruner(min_trials=5), "last"
    if config == "hyperband":
        return sn.pruners.HyperbandPruner(max_resource=epochs, reduction_factor=3), "last"
    asha = sn.pruners.ASHAPruner(reduction_factor=3, min_resource=1, max_resource=epochs)
    return asha, ("last" if config == "asha" else None)


def algorithm_of(config: str, seed: int, args: argparse.Namespace) -> Any:
    """The algorithm of a configuration: the benchmark's, or successive halving over it."""
    if config != "successive-halving":
        return args.algorithm
    return sn.algorithms.get(
        "successive_halving",
        base=sn.algorithms.get(args.algorithm, seed=seed),
        min_budget=1,
        max_budget=args.epochs,
        reduction_factor=args.epochs,
        seed=seed,
    )


def pick(result: sn.SearchResult) -> sn.Trial:
    """The best completed trial; under a budget schedule, the best at the largest budget
    reached (rewards at different budgets are not comparable)."""
    budgets = [t.metrics["budget"] for t in result.completed if "budget" in t.metrics]
    if not budgets:
        return result.best
    top = [t for t in result.completed if t.metrics.get("budget") == max(budgets)]
    return max(top, key=lambda t: (t.reward, -t.id))


def run_one(config: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    pruner, policy = pruner_of(config, args.epochs)
    evaluate = Evaluate(epochs=args.epochs, train=args.train)
    evaluate.trainer.data_shape()  # Load the data before the clock starts.
    start = time.perf_counter()
    result = sn.search(
        space(),
        evaluate,
        algorithm=algorithm_of(config, seed, args),
        num_trials=args.trials,
        seed=seed,
        pruner=pruner,
        pruned_reward=policy,
        progress=False,
    )
    seconds = time.perf_counter() - start
    best = pick(result)
    epochs = sum(
        t.metrics["epochs"] if t.status == "completed" else t.metrics.get("step", 0)
        for t in result.trials
    )
    return {
        "config": config,
        "seed": seed,
        "seconds": seconds,
        "epochs_trained": epochs,
        "pruned": len(result.pruned),
        "completed": len(result.completed),
        "best_val_accuracy": best.metrics["accuracy"],
        "best_test_accuracy": best.metrics["test_accuracy"],
        "best_tokens": best.tokens,
    }


def summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and seed spread (sample std) per configuration, and the ratios to "none"."""
    out = []
    base = [r for r in rows if r["config"] == "none"]
    base_seconds = statistics.mean(r["seconds"] for r in base)
    base_epochs = statistics.mean(r["epochs_trained"] for r in base)
    for config in CONFIGS:
        mine = [r for r in rows if r["config"] == config]
        if not mine:
            continue
        tests = [r["best_test_accuracy"] for r in mine]
        out.append(
            {
                "config": config,
                "seeds": len(mine),
                "seconds": statistics.mean(r["seconds"] for r in mine),
                "time_ratio": statistics.mean(r["seconds"] for r in mine) / base_seconds,
                "epochs_ratio": statistics.mean(r["epochs_trained"] for r in mine) / base_epochs,
                "pruned": statistics.mean(r["pruned"] for r in mine),
                "test_mean": statistics.mean(tests),
                "test_std": statistics.stdev(tests) if len(tests) > 1 else 0.0,
            }
        )
    return out


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| pruner | seeds | wall time (s) | time vs none | epochs vs none | pruned trials "
        "| held-out accuracy of the pick (mean ± std) |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summary(rows):
        lines.append(
            f"| {s['config']} | {s['seeds']} | {s['seconds']:.0f} | {s['time_ratio']:.0%} "
            f"| {s['epochs_ratio']:.0%} | {s['pruned']:.1f} "
            f"| {s['test_mean']:.3f} ± {s['test_std']:.3f} |"
        )
    return "\n".join(lines)


def goal(rows: list[dict[str, Any]]) -> str:
    by = {s["config"]: s for s in summary(rows)}
    none, asha = by["none"], by.get("asha")
    if asha is None:
        return "ASHA not run"
    accurate = asha["test_mean"] >= none["test_mean"] - max(none["test_std"], asha["test_std"])
    fast = asha["time_ratio"] <= 0.40
    return (
        f"ASHA: {asha['test_mean']:.3f} vs {none['test_mean']:.3f} ± {none['test_std']:.3f} "
        f"({'within' if accurate else 'NOT within'} the seed spread) in "
        f"{asha['time_ratio']:.0%} of the wall time ({'met' if fast else 'MISSED'}: <= 40%)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: tiny and fast")
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--train", type=int, default=1000, help="training digits used")
    parser.add_argument("--algorithm", default="reinforce")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.seeds, args.epochs, args.train = 4, [0], 2, 128
    torch.set_num_threads(1)
    warm = argparse.Namespace(**{**vars(args), "trials": 2})
    run_one("asha", 0, warm)  # Warm-up (lazy imports and first-call costs), not timed.
    rows = []
    for seed in args.seeds:
        for config in args.configs:
            row = run_one(config, seed, args)
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")
    print(table(rows))
    if "none" in args.configs:
        print(goal(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
