"""The learned search agent on NAS-Bench-201: training, throughput, search and transfer (#13).

Subcommands:

* ``train``: trains the shipped agent with Ape-X on the CIFAR-10 table's
  ``c10valid_val_12`` and writes it to the package
  (``algorithms/learned_search/nb201_c10.pt``), printing its cost.
* ``throughput``: Ape-X transitions per second with 1 and 2 actors (or
  ``--actors 1,2,4,8``), the asynchronous learner at several replay ratios
  (``--updates-per-transition``) and the ordered rounds at the default, each
  repeated (``--repeats``, interleaved) with the median and range of the ratio.
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
         [--budgets 25,50,100,300] [--jobs 2] [--repeats 3] [--out figures.json]
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
#: The shipped agent's training settings (``train``): ``learned_search.train``'s
#: defaults, with rounds (``ordered``) so that the same seed gives the same agent.
TRAIN = {"actors": 2, "ordered": True, "transitions": 200_000, "episode_length": 100, "seed": 0}


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


# ---------------------------------------------------------------------- throughput


def throughput(
    transitions: int,
    repeats: int,
    upts: Sequence[float],
    actor_counts: Sequence[int],
    batch_size: int | None = None,
) -> list[dict[str, Any]]:
    """Transitions per second of each (replay ratio, ordering) at each actor count.

    The asynchronous learner runs at every ``upts``; the ordered rounds at the
    library's default (with ``batch_size`` given: at the last of ``upts``). Repeats
    are interleaved (each repeat runs every actor count in turn), so a slow spell of
    the machine hits all counts alike.
    """
    default = train.__kwdefaults__["updates_per_transition"]
    batch = batch_size or train.__kwdefaults__["batch_size"]
    modes = [(u, False) for u in upts] + [(default if batch_size is None else upts[-1], True)]
    out = []
    for upt, ordered in modes:
        rates: dict[int, list[float]] = {a: [] for a in actor_counts}
        for _ in range(repeats):
            for actors in actor_counts:
                result = train(
                    Objective("c10"), spaces.get("nasbench201"), actors=actors,
                    transitions=transitions, seed=0, updates_per_transition=upt, ordered=ordered,
                    batch_size=batch,
                )  # fmt: skip
                rates[actors].append(result.transitions_per_second)
                print(f"  upt {upt:g} ordered={ordered} {actors} actor(s): "
                      f"{result.transitions_per_second:.0f}/s", flush=True)  # fmt: skip
        base = rates[actor_counts[0]]
        ratios = {a: [r / b for r, b in zip(rates[a], base)] for a in actor_counts}
        out.append({"updates_per_transition": upt, "batch_size": batch, "ordered": ordered,
                    "rates": rates, "ratios": ratios})  # fmt: skip
    return out


def _torch_job(steps: int) -> float:
    """Seconds for ``steps`` batch-1 forward passes of a small transformer (one thread)."""
    torch.set_num_threads(1)
    layer = torch.nn.TransformerEncoderLayer(32, 2, 64, dropout=0.0, batch_first=True)
    model = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval()
    x = torch.randn(1, 6, 32)
    start = time.perf_counter()
    with torch.inference_mode():
        for _ in range(steps):
            model(x)
    return time.perf_counter() - start


def box_scaling(steps: int = 6000) -> float:
    """How much work two identical CPU-bound processes do here, relative to one.

    The ceiling of any 2-actor speed-up on this machine (1 = no gain, 2 = perfect).
    """
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        one = pool.map(_torch_job, [steps])[0]
    with context.Pool(2) as pool:
        two = pool.map(_torch_job, [steps, steps])
    return 2 * one / max(two)


def markdown_throughput(rows: list[dict[str, Any]]) -> list[str]:
    counts = list(rows[0]["rates"])
    lines = [
        "| learner | batch | updates per transition | samples per transition | "
        + " | ".join(f"{a} actor(s), median (range)" for a in counts)
        + " | "
        + " | ".join(f"ratio {a}:{counts[0]}, median (range)" for a in counts[1:])
        + " |",
        "|---|---|---|---|" + "---|" * (2 * len(counts) - 1),
    ]
    for row in rows:
        rates = " | ".join(
            f"{statistics.median(r):.0f} ({min(r):.0f}–{max(r):.0f})" for r in row["rates"].values()
        )
        ratios = " | ".join(
            f"{statistics.median(r):.2f} ({min(r):.2f}–{max(r):.2f})"
            for a, r in row["ratios"].items()
            if a != counts[0]
        )
        learner = "ordered rounds" if row["ordered"] else "asynchronous"
        upt, batch = row["updates_per_transition"], row["batch_size"]
        lines.append(f"| {learner} | {batch} | {upt:g} | {upt * batch:.2f} | {rates} | {ratios} |")
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
    parser.add_argument(
        "--transitions", type=int, default=None,
        help=f"train: default {TRAIN['transitions']}; throughput: per run, default 20000",
    )  # fmt: skip
    parser.add_argument(
        "--updates-per-transition", default="0,0.02,0.1",
        help="throughput: learner updates per transition, comma-separated (0: actors only)",
    )  # fmt: skip
    parser.add_argument("--actors", default="1,2", help="throughput: actor counts")
    parser.add_argument("--batch-size", type=int, default=None, help="throughput: batch size")
    parser.add_argument("--repeats", type=int, default=3, help="throughput: runs per setting")
    parser.add_argument("--out", default=None, help="write the figures (JSON) here")
    parser.add_argument("--agent-out", default=str(SHIPPED_FILE))
    args = parser.parse_args(argv)
    if args.command == "train":
        start = time.perf_counter()
        cpu0 = time.process_time()
        result = train(
            Objective("c10"), spaces.get("nasbench201"),
            **{**TRAIN, "transitions": args.transitions or TRAIN["transitions"]},
            save=args.agent_out,
            info={
                "objective": "nasbench201 c10valid_val_12",
                "trained_by": "python benchmarks/learned_search.py train",
            },
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
        start = time.perf_counter()
        print(f"box: two identical torch processes do {box_scaling():.2f}x the work of one")
        rows = throughput(
            args.transitions or 20_000, args.repeats,
            [float(u) for u in args.updates_per_transition.split(",")],
            [int(a) for a in args.actors.split(",")], args.batch_size,
        )  # fmt: skip
        print("\n".join(markdown_throughput(rows)))
        print(f"wall time {time.perf_counter() - start:.0f} s")
        if args.out:
            pathlib.Path(args.out).write_text(json.dumps(rows))
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
