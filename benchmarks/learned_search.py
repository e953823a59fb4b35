"""The learned search agent on NAS-Bench-201: training, throughput, search and transfer (#13).

Subcommands:

* ``train``: trains the shipped agent with Ape-X on the CIFAR-10 table's
  ``c10valid_val_12`` and writes it to the package
  (``algorithms/learned_search/nb201_c10.pt``), printing its cost.
* ``throughput``: Ape-X transitions per second with 1 and 2 actors (same
  settings otherwise, fixed number of transitions).
* ``search``: the shipped agent against ``local_search``, ``random_walk``,
  ``random`` and Optuna's TPE on three objectives, through the real ``sn.search``
  path, with ``benchmarks/nb201_search.py``'s ``anytime`` protocol: one search of
  the largest budget per seed, read at every budget (none of these algorithms
  plans with the budget: ``learned_search``'s horizon is fixed at 100 queries):

  - ``c10``: the benchmark protocol (Dong & Yang, ICLR 2020): reward
    ``c10valid_val_12``, report ``c10_test_200`` of the best-by-reward trial.
  - ``c10_test12`` (transfer): reward ``c10_test_12``, report ``c10_test_200``.
  - ``params`` (transfer): reward ``c10valid_val_12 − 5·params_mb``, report
    ``c10_test_200 − 5·params_mb`` (accuracy in % minus 5 points per MB of
    parameters: the best cells by accuracy lose up to 7.7 points).

  Queries to the optimum: the first query that proposes the cell with the
  highest reward of the objective, in the search of the largest budget.

Run: python benchmarks/learned_search.py {train,throughput,search} [--seeds 100]
         [--budgets 25,50,100,300] [--jobs 2] [--out benchmarks/RESULTS-learned-search.md]
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import multiprocessing
import os
import pathlib
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

import symbolic_nas as sn
from symbolic_nas import algorithms, spaces
from symbolic_nas.algorithms.learned_search import load_agent, train
from symbolic_nas.nasbench import NasBench201Table

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHIPPED_FILE = ROOT / "algorithms" / "learned_search" / "nb201_c10.pt"
#: name -> (fitness column, report column, penalty per MB of parameters)
OBJECTIVES: dict[str, tuple[str, str, float]] = {
    "c10": ("c10valid_val_12", "c10_test_200", 0.0),
    "c10_test12": ("c10_test_12", "c10_test_200", 0.0),
    "params": ("c10valid_val_12", "c10_test_200", 5.0),
}
ALGORITHMS = ("learned_search", "local_search", "random_walk", "random", "optuna_tpe")
#: The shipped agent's training settings (``train``).
TRAIN = {"actors": 2, "transitions": 16_000, "chunk": 100, "episode_length": 100, "seed": 0}


class Objective:
    """A NAS-Bench-201 objective over op codes, loaded lazily (picklable for actors)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._arrays: tuple[Any, np.ndarray, np.ndarray] | None = None

    def arrays(self) -> tuple[Any, np.ndarray, np.ndarray]:
        """(table, fitness per row, report per row)."""
        if self._arrays is None:
            table = NasBench201Table()
            fit, rep, penalty = OBJECTIVES[self.name]
            params = table.column("params_mb")
            self._arrays = (
                table,
                table.column(fit) - penalty * params,
                table.column(rep) - penalty * params,
            )
        return self._arrays

    def __call__(self, tokens: Sequence[int]) -> float:
        table, fitness, _ = self.arrays()
        return float(fitness[table.row_of_codes(tokens)])

    def __getstate__(self) -> dict[str, Any]:
        return {"name": self.name, "_arrays": None}


@functools.cache
def _objective(name: str) -> Objective:
    return Objective(name)


def _optimum_row(name: str) -> int:
    _, fitness, _ = _objective(name).arrays()
    rows = np.flatnonzero(fitness == np.nanmax(fitness))
    if len(rows) != 1:
        raise ValueError(f"the optimum of {name!r} must be unique, but {len(rows)} cells tie")
    return int(rows[0])


# ---------------------------------------------------------------------- searching


def _records(
    algorithm: str, objective: str, seed: int, trials: int
) -> list[tuple[float, float, bool]]:
    """(fitness, report, is optimum) of each query of one search."""
    obj = _objective(objective)
    table, fitness, report = obj.arrays()
    optimum = _optimum_row(objective)
    space = spaces.get("nasbench201")
    if algorithm == "optuna_tpe":
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        rows: list[int] = []

        def study_objective(trial: Any) -> float:
            codes = [
                trial.suggest_categorical(f"edge{i}", list(range(len(table.OPS))))
                for i in range(len(table.EDGES))
            ]
            rows.append(table.row_of_codes(codes))
            return float(fitness[rows[-1]])

        study = optuna.create_study(
            direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed)
        )
        study.optimize(study_objective, n_trials=trials)
    else:

        @sn.evaluator(input="tokens")
        def evaluate(tokens: list[int]) -> float:
            return float(fitness[table.row_of_codes(tokens)])

        result = sn.search(
            space, evaluate, algorithm=algorithm, num_trials=trials, workers=1, seed=seed,
            progress=False,
        )  # fmt: skip
        rows = [table.row_of_codes(t.tokens) for t in result.trials]
    return [(float(fitness[r]), float(report[r]), r == optimum) for r in rows]


def _read(records: list[tuple[float, float, bool]], budget: int) -> tuple[float, float]:
    best_f, best_r = -math.inf, math.nan
    for f, r, _ in records[:budget]:
        if f > best_f:
            best_f, best_r = f, r
    return best_f, best_r


def run_job(job: tuple[str, str, int, tuple[int, ...]]) -> dict[str, Any]:
    """One (algorithm, objective, seed): the report of the pick at each budget, and
    the first query proposing the optimum in the largest search."""
    algorithm, objective, seed, budgets = job
    start = time.perf_counter()
    records = _records(algorithm, objective, seed, budgets[-1])
    picks = [_read(records, b)[1] for b in budgets]
    found = next((i + 1 for i, (_, _, hit) in enumerate(records) if hit), None)
    return {
        "algorithm": algorithm,
        "objective": objective,
        "seed": seed,
        "picks": picks,
        "found_at": found,
        "seconds": time.perf_counter() - start,
    }


def _init_worker() -> None:
    torch.set_num_threads(1)


def _median(found: list[int | None]) -> float:
    return statistics.median(math.inf if f is None else f for f in found)


def search_benchmark(
    seeds: int, budgets: tuple[int, ...], jobs: int, names: Sequence[str], objectives: Sequence[str]
) -> dict[str, Any]:
    work = [(a, o, s, budgets) for o in objectives for a in names for s in range(seeds)]
    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(jobs, initializer=_init_worker) as pool:
        results = []
        for i, r in enumerate(pool.imap_unordered(run_job, work, chunksize=2), start=1):
            results.append(r)
            if i % 50 == 0 or i == len(work):
                print(f"  {i}/{len(work)} jobs, {time.perf_counter() - start:.0f} s", flush=True)
    return {"results": results, "seconds": time.perf_counter() - start}


def summarize(
    results: list[dict[str, Any]], budgets: tuple[int, ...]
) -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in results:
        out.setdefault((r["objective"], r["algorithm"]), {"picks": [], "found": [], "seconds": 0.0})
        cell = out[(r["objective"], r["algorithm"])]
        cell["picks"].append(r["picks"])
        cell["found"].append(r["found_at"])
        cell["seconds"] += r["seconds"]
    for cell in out.values():
        picks = np.asarray(cell["picks"])
        cell["mean"] = dict(zip(budgets, picks.mean(0)))
        cell["std"] = dict(zip(budgets, picks.std(0)))
        cell["runs"] = len(picks)
        cell["median"] = _median(cell["found"])
        cell["share"] = sum(f is not None for f in cell["found"]) / len(cell["found"])
    return out


def _welch(a: Sequence[float], b: Sequence[float]) -> float:
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    return float((np.mean(a) - np.mean(b)) / math.sqrt(va + vb)) if va + vb > 0 else 0.0


def markdown_search(summary: dict[tuple[str, str], dict[str, Any]], budgets: tuple[int, ...],
                    names: Sequence[str], objectives: Sequence[str]) -> list[str]:  # fmt: skip
    lines = []
    for objective in objectives:
        fit, rep, penalty = OBJECTIVES[objective]
        what = f"reward `{fit}`" + (f" − {penalty:g}·params_mb" if penalty else "")
        shown = f"`{rep}`" + (f" − {penalty:g}·params_mb" if penalty else "")
        lines += [
            f"### `{objective}`: {what}; figure: {shown} of the best-by-reward pick",
            "",
            "| algorithm | runs | "
            + " | ".join(f"{b} queries" for b in budgets)
            + " | median queries to optimum | found |",
            "|---|---|" + "---|" * len(budgets) + "---|---|",
        ]
        for name in names:
            cell = summary.get((objective, name))
            if cell is None:
                continue
            figures = " | ".join(f"{cell['mean'][b]:.2f} ± {cell['std'][b]:.2f}" for b in budgets)
            median = f"> {budgets[-1]}" if math.isinf(cell["median"]) else f"{cell['median']:g}"
            lines.append(
                f"| {name} | {cell['runs']} | {figures} | {median} | {cell['share']:.0%} |"
            )
        lines.append("")
    return lines


def goals(summary: dict[tuple[str, str], dict[str, Any]], objectives: Sequence[str]) -> list[str]:
    lines = ["| goal | result | figures |", "|---|---|---|"]
    for objective in objectives:
        agent = summary.get((objective, "learned_search"))
        for rival in ("local_search", "optuna_tpe"):
            other = summary.get((objective, rival))
            if agent is None or other is None:
                continue
            for b in (100, 300):
                if b not in agent["mean"]:
                    continue
                i = list(agent["mean"]).index(b)
                a = [p[i] for p in agent["picks"]]
                o = [p[i] for p in other["picks"]]
                t = _welch(a, o)
                met = np.mean(a) > np.mean(o) and t > 2
                verdict = "**met**" if met else ("tie" if abs(t) <= 2 else "**missed**")
                lines.append(
                    f"| `{objective}`: learned_search beats {rival} at {b} queries | {verdict} | "
                    f"{np.mean(a):.2f} vs {np.mean(o):.2f} (Welch t = {t:.1f}) |"
                )
    return lines


# ---------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["train", "throughput", "search"])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--budgets", default="25,50,100,300")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS))
    parser.add_argument("--objectives", default=",".join(OBJECTIVES))
    parser.add_argument("--transitions", type=int, default=TRAIN["transitions"])
    parser.add_argument(
        "--updates-per-transition", type=float, default=0.1,
        help="throughput: learner updates per transition (0: actors only)",
    )  # fmt: skip
    parser.add_argument("--out", default=None, help="write the figures (JSON) here")
    parser.add_argument("--agent-out", default=str(SHIPPED_FILE))
    args = parser.parse_args(argv)
    if args.command == "train":
        start = time.perf_counter()
        cpu0 = time.process_time()
        result = train(
            Objective("c10"), spaces.get("nasbench201"),
            **{**TRAIN, "transitions": args.transitions},
            save=args.agent_out, info={"objective": "nasbench201 c10valid_val_12"},
            log=lambda s: print(s, flush=True),
        )  # fmt: skip
        figures = {
            "wall_s": round(time.perf_counter() - start, 1),
            "driver_cpu_s": round(time.process_time() - cpu0, 1),
            "transitions": result.transitions,
            "updates": result.updates,
            "transitions_per_s": round(result.transitions_per_second, 1),
            "restarts": result.restarts,
            "weights_bytes": os.path.getsize(args.agent_out),
            "parameters": sum(p.numel() for p in load_agent(args.agent_out).network.parameters()),
        }
        print(json.dumps(figures))
    elif args.command == "throughput":
        figures = {}
        for actors in (1, 2):
            result = train(
                Objective("c10"), spaces.get("nasbench201"), actors=actors,
                transitions=args.transitions, chunk=100, seed=0,
                updates_per_transition=args.updates_per_transition,
            )  # fmt: skip
            figures[actors] = round(result.transitions_per_second, 1)
            print(f"{actors} actor(s): {figures[actors]} transitions/s", flush=True)
        print(json.dumps({"transitions_per_s": figures, "ratio": figures[2] / figures[1]}))
    else:
        budgets = tuple(int(b) for b in args.budgets.split(","))
        names = [n for n in args.algorithms.split(",") if n]
        objectives = [o for o in args.objectives.split(",") if o]
        missing = [n for n in names if n != "optuna_tpe" and n not in algorithms.available()]
        if missing:
            print(f"not registered here, left out: {missing}", file=sys.stderr)
            names = [n for n in names if n not in missing]
        bench = search_benchmark(args.seeds, budgets, args.jobs, names, objectives)
        summary = summarize(bench["results"], budgets)
        text = markdown_search(summary, budgets, names, objectives) + goals(summary, objectives)
        print("\n".join(text))
        print(f"wall time {bench['seconds']:.0f} s with {args.jobs} processes")
        if args.out:
            pathlib.Path(args.out).write_text(
                json.dumps(
                    {"budgets": budgets, "seconds": bench["seconds"], "results": bench["results"]}
                )
            )


if __name__ == "__main__":
    main()
