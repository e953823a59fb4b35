"""Tuning experiments for the ``reinforce`` (and ``ppo``) defaults on NAS-Bench-201.

The harness works directly on the table: six edges with five operations each
(15,625 cells), the reward of a cell is ``c10valid_val_12`` (percent), and the
figure reported at a budget is ``c10_test_200`` of the best-so-far cell by reward.
The optimum (94.37 test, also the arg-max of the reward) counts as found when it is
first *proposed*; a search stops there (the pick stays the optimum, so the rest of
its curve is known), and "unique" counts the cells proposed until then.

Run: python benchmarks/tune_reinforce.py [--seeds 50] [--budget 300] [--workers 2]
         [--algorithm reinforce] [--grid NAME | --settings "[{...}, ...]"]
         [--set key=value ...] [--scale FACTOR]

Each setting prints: mean ± std of the test accuracy at 100 and 300 queries, the
median number of queries until the optimum is first proposed (">B" when fewer
than half the seeds found it within the budget), the fraction found, and the
seconds per run.
"""

from __future__ import annotations

import argparse
import ast
import multiprocessing
import statistics
import time
from typing import Any

import numpy as np
import torch

import symbolic_nas as sn
from symbolic_nas import algorithms
from symbolic_nas.nasbench.table import NasBench201Table

_TABLE: NasBench201Table | None = None
_CODEC: sn.Codec | None = None

REWARD = "c10valid_val_12"
REPORT = "c10_test_200"


def _init() -> None:
    global _TABLE, _CODEC
    torch.set_num_threads(1)
    _TABLE = NasBench201Table()
    _CODEC = sn.encode([sn.oneof(list(NasBench201Table.OPS)) for _ in range(6)])


def run_one(job: tuple[str, dict[str, Any], int, int, float]) -> dict[str, Any]:
    """One search: returns test accuracy of the best-so-far at each query and the hit."""
    name, kwargs, seed, budget, scale = job
    table, codec = _TABLE, _CODEC
    assert table is not None and codec is not None
    reward = table.column(REWARD)
    report = table.column(REPORT)
    optimum = int(np.nanargmax(reward))
    algo = algorithms.get(name, seed=seed, **kwargs)
    algo.setup(codec, budget=budget)
    best_reward, best_row = -np.inf, -1
    curve = np.empty(budget)
    found = None
    unique: set[int] = set()
    start = time.perf_counter()
    for q in range(budget):
        p = algo.propose()
        row = table.row_of_codes(p.tokens)
        unique.add(row)
        if row == optimum and found is None:
            found = q + 1
        r = float(reward[row])
        algo.feedback(p, r * scale)
        if r > best_reward:
            best_reward, best_row = r, row
        curve[q] = report[best_row]
        if found is not None:
            # The optimum is the reward's unique arg-max: it stays the pick, so the
            # rest of the curve is known without running the search on.
            curve[q:] = report[best_row]
            break
    return {
        "curve": curve,
        "found": found,
        "seconds": time.perf_counter() - start,
        "unique": len(unique),
    }


def evaluate(
    name: str,
    kwargs: dict[str, Any],
    *,
    seeds: int,
    budget: int,
    pool: Any,
    scale: float = 1.0,
) -> dict[str, Any]:
    jobs = [(name, kwargs, seed, budget, scale) for seed in range(seeds)]
    results = pool.map(run_one, jobs)
    curves = np.stack([r["curve"] for r in results])
    found = [r["found"] if r["found"] is not None else np.inf for r in results]
    out: dict[str, Any] = {}
    for at in (25, 50, 100, 150, 300, 1000):
        if at <= budget:
            out[f"@{at}"] = (float(curves[:, at - 1].mean()), float(curves[:, at - 1].std()))
    med = statistics.median(found)
    out["median_to_opt"] = med
    out["found"] = float(np.mean([f < np.inf for f in found]))
    out["seconds"] = float(np.mean([r["seconds"] for r in results]))
    out["unique"] = float(np.mean([r["unique"] for r in results]))
    return out


def fmt(result: dict[str, Any], budget: int) -> str:
    parts = []
    for key in ("@25", "@50", "@100", "@150", "@300", "@1000"):
        if key in result:
            m, s = result[key]
            parts.append(f"{key} {m:.2f}±{s:.2f}")
    med = result["median_to_opt"]
    parts.append(f"median→opt {'>' + str(budget) if med == np.inf else int(med)}")
    parts.append(f"found {result['found']:.2f}")
    parts.append(f"unique {result['unique']:.0f}")
    parts.append(f"{result['seconds']:.2f}s/run")
    return "  ".join(parts)


GRIDS: dict[str, list[dict[str, Any]]] = {
    "defaults": [{}],
    "paper": [{"preset": "zoph_le_2017"}],
    "lr": [{"learning_rate": lr} for lr in (0.003, 0.01, 0.03, 0.1)],
    "batch": [{"batch_size": m, "sample_batch": m} for m in (1, 2, 4, 8, 16)],
    "memory": [{"reward_memory": False}, {"reward_memory": True}],
    "entropy": [{"entropy_weight": w} for w in (0.0, 0.01, 0.03, 0.1)],
    "decay": [{"baseline_decay": d} for d in (0.5, 0.8, 0.9, 0.95, 0.99)],
    "shape": [
        {"temperature": 1.0, "tanh_constant": 0.0},
        {"temperature": 5.0, "tanh_constant": 2.5},
        {"temperature": 1.0, "tanh_constant": 1.5},
        {"temperature": 1.0, "tanh_constant": 2.5},
    ],
    "normalize": [{"normalize_advantage": False}, {"normalize_advantage": True}],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithm", default="reinforce")
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--grid", default="defaults", help=f"one of {sorted(GRIDS)}")
    parser.add_argument(
        "--settings", default=None, help="a Python list of dicts, used instead of --grid"
    )
    parser.add_argument(
        "--set", nargs="*", default=[], help="key=value overrides applied to every setting"
    )
    parser.add_argument("--scale", type=float, default=1.0, help="multiply rewards by this")
    args = parser.parse_args()
    base = {}
    for item in args.set:
        key, value = item.split("=", 1)
        try:
            base[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            base[key] = value
    grid = ast.literal_eval(args.settings) if args.settings else GRIDS[args.grid]
    settings = [dict(base, **s) for s in grid]
    print(
        f"{args.algorithm} on NAS-Bench-201 (reward {REWARD} x {args.scale}, report {REPORT}), "
        f"{args.seeds} seeds, budget {args.budget}"
    )
    with multiprocessing.Pool(args.workers, initializer=_init) as pool:
        for setting in settings:
            result = evaluate(
                args.algorithm,
                setting,
                seeds=args.seeds,
                budget=args.budget,
                pool=pool,
                scale=args.scale,
            )
            print(f"{setting}: {fmt(result, args.budget)}", flush=True)


if __name__ == "__main__":
    main()
