"""NAS-Bench-201 search efficiency: every algorithm, random search and Optuna's TPE (issue #5).

Every registered algorithm searches the NAS-Bench-201 cell space (six edges, five
operations, 15,625 cells) through the real ``sn.search`` path (inline executor, no
run directory, no progress bar) under the benchmark paper's protocol (Dong and
Yang, ICLR 2020): the search sees the 12-epoch validation accuracy
``c10valid_val_12`` as its reward, and the figure at a budget of B queries is the
200-epoch test accuracy ``c10_test_200`` of the best trial among the first B by
reward (the first one found on ties). Optuna's ``TPESampler`` with default
settings (each edge a categorical parameter) is measured in the same run as a
reference row.

Protocols (``--protocol``):

* ``fixed`` (default): one search of ``num_trials=B`` per budget B, as a user
  with B queries would run it. ``reinforce``, ``ppo`` and ``q_learning`` plan
  with their budget (learning-rate scaling, MetaQNN's ε schedule: 55.6 % of the
  budget random), so a longer search read early measures a different algorithm.
  The searches of all budgets cost ``sum(budgets)`` trials per seed, 1.48 times
  the largest budget with the default budgets.
* ``anytime``: one search of the largest budget per seed, read at every budget.
  For algorithms that ignore the budget (:data:`BUDGET_FREE`: ``random``,
  ``evolution``, ``local_search``, ``bananas``; Optuna's TPE) both protocols give
  the same figures, so they always run ``anytime`` (one search per seed).

A search stops once it has proposed the optimum (the unique arg-max of the
reward): from then on the best-so-far pick is the optimum at every budget, so
its figures are those of the whole search, which costs the same minus the
trials after the optimum. The stop goes through ``sn.search`` itself: the trial
after the optimum fails on purpose and ``max_consecutive_failures=1`` ends the
run; the trials up to the optimum are the search. Optuna's study calls
``study.stop()`` instead. *trials* and *ms / query* count only the trials run.

Queries to the optimum: the first query (1-based) that proposes the cell with
the highest reward (unique; checked) in the search of the largest budget. A run
that never proposes it is censored; the median is reported when more than half
the runs found it, else "> largest budget", always with the share that found it.

Optuna's TPE costs grow with the number of trials (about 2 s per 300-trial
study and 12 s per 1,000-trial study on this 2-core box), so by default its
studies stop at 300 trials (``--optuna-max-budget``), which covers the goals'
budgets and its median queries to the optimum (139 in the issue's
measurement). Its row is labelled with that limit.

Run: python benchmarks/nb201_search.py [--seeds 100] [--budgets 25,50,100,150,300,1000]
         [--algorithms evolution,ppo,...,optuna_tpe] [--optuna-seeds N]
         [--seeds-of reinforce=20,ppo=20]
         [--optuna-max-budget 300] [--jobs 2] [--protocol fixed]
         [--out benchmarks/RESULTS.md] [--plot benchmarks/nb201_search.png]

It prints the table and writes it, the goals and the plot (mean test accuracy
against queries) to ``--out`` and ``--plot``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import math
import multiprocessing
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from typing import Any

import nb201_search_report as report  # the sibling module (the script's folder is on sys.path)
import numpy as np
import torch

import symbolic_nas as sn
from symbolic_nas import algorithms
from symbolic_nas.nasbench import NasBench201
from symbolic_nas.tuner import TooManyFailuresError
from symbolic_nas.tuner.evaluators import evaluator

__all__ = [
    "BUDGET_FREE",
    "OPTUNA",
    "PROTOCOLS",
    "Benchmark",
    "RunResult",
    "Trace",
    "optimum_index",
    "run_benchmark",
    "run_job",
    "trace",
]

#: Name of Optuna's TPE reference row among the algorithms.
OPTUNA = "optuna_tpe"
PROTOCOLS = ("fixed", "anytime")
DEFAULT_BUDGETS = (25, 50, 100, 150, 300, 1000)
#: Algorithms whose proposals do not depend on the budget they are told: one search
#: of the largest budget gives their figures at every budget.
BUDGET_FREE = frozenset({"random", "evolution", "local_search", "bananas"})
DEFAULT_OPTUNA_MAX_BUDGET = 300


@dataclasses.dataclass(frozen=True)
class Trace:
    """What one search sequence gives at each budget.

    Attributes:
        best_fitness: Reward of the best-so-far trial after each budget's queries.
        best_report: Report column of that trial.
        found_at: The 1-based query that first proposed the optimum, or None.
    """

    best_fitness: tuple[float, ...]
    best_report: tuple[float, ...]
    found_at: int | None


def trace(
    fitness: Sequence[float],
    reported: Sequence[float],
    is_optimum: Sequence[bool],
    budgets: Sequence[int],
) -> Trace:
    """Reads one search (its trials in query order) at each budget.

    The best-so-far trial is the one with the highest fitness, the first found on
    ties; its report column is the figure at that budget.

    Args:
        fitness: Reward of each query.
        reported: Report column of each query.
        is_optimum: Whether each query proposed the optimum.
        budgets: Increasing query counts, each at most ``len(fitness)``.

    Raises:
        ValueError: The sequences differ in length, or a budget is out of range.

    Example:
        >>> t = trace([1.0, 3.0, 3.0, 2.0], [10.0, 30.0, 31.0, 20.0],
        ...           [False, False, True, False], [1, 2, 4])
        >>> t.best_fitness, t.best_report, t.found_at
        ((1.0, 3.0, 3.0), (10.0, 30.0, 30.0), 3)
    """
    n = len(fitness)
    if len(reported) != n or len(is_optimum) != n:
        raise ValueError(
            "`fitness`, `reported` and `is_optimum` must have the same length, but got "
            f"{n}, {len(reported)} and {len(is_optimum)}"
        )
    if list(budgets) != sorted(set(budgets)) or not budgets or budgets[0] < 1 or budgets[-1] > n:
        raise ValueError(
            f"`budgets` must be increasing ints in [1, {n}], but got {list(budgets)!r}"
        )
    best_f, best_r = -math.inf, math.nan
    found_at = None
    best_fitness, best_report = [], []
    marks = iter(budgets)
    mark = next(marks)
    for query, (f, r, hit) in enumerate(zip(fitness, reported, is_optimum), start=1):
        if hit and found_at is None:
            found_at = query
        if f > best_f:
            best_f, best_r = f, r
        if query == mark:
            best_fitness.append(best_f)
            best_report.append(best_r)
            mark = next(marks, -1)
    return Trace(tuple(best_fitness), tuple(best_report), found_at)


@dataclasses.dataclass(frozen=True)
class RunResult:
    """One (algorithm, seed) run: its figures at each budget.

    Attributes:
        algorithm: A registered algorithm name or :data:`OPTUNA`.
        seed: The seed of the searches.
        budgets: The budgets read (increasing).
        best_fitness: Reward of the pick at each budget.
        best_report: Report column (the figure) of the pick at each budget.
        found_at: First query proposing the optimum in the largest budget's search.
        max_budget: Trials of the largest search (``found_at`` is censored there).
        trials: Trials run in all, over every search of the run.
        seconds: Wall time of the run's searches.
    """

    algorithm: str
    seed: int
    budgets: tuple[int, ...]
    best_fitness: tuple[float, ...]
    best_report: tuple[float, ...]
    found_at: int | None
    max_budget: int
    trials: int
    seconds: float


@functools.cache
def _bench() -> NasBench201:
    """The benchmark, loaded once per process."""
    return NasBench201()


def optimum_index(bench: NasBench201) -> int:
    """The official index of the cell with the highest fitness.

    Raises:
        ValueError: Several cells share the highest fitness (the optimum would be ambiguous).

    Example:
        >>> optimum_index(NasBench201())
        13714
    """
    fitness = bench.table.column(bench.fitness_column)
    best = float(np.nanmax(fitness))
    rows = np.flatnonzero(fitness == best)
    if len(rows) != 1:
        raise ValueError(
            f"the fitness arg-max must be unique, but {len(rows)} cells share the best "
            f"{bench.fitness_column} {best}"
        )
    return int(bench.table.indices[rows[0]])


class _OptimumFound(Exception):
    """Raised for the trial after the optimum: it ends the search (see the module docs)."""


def _search_records(bench: NasBench201, algorithm: str, seed: int, trials: int) -> list[dict]:
    """One ``sn.search`` of up to ``trials`` trials, stopped after the optimum: the
    reward and metrics of each trial, in query order."""
    optimum = optimum_index(bench)
    records: list[dict] = []

    @evaluator(input="tokens")
    def evaluate(tokens: Sequence[int]) -> dict:
        if records and records[-1]["index"] == optimum:
            raise _OptimumFound("the optimum was proposed: the search stops here")
        records.append(bench.evaluate(tokens))
        return records[-1]

    try:
        result = sn.search(
            bench.codec,
            evaluate,
            algorithm=algorithm,
            num_trials=trials,
            workers=1,
            seed=seed,
            progress=False,
            max_consecutive_failures=1,
        )
    except TooManyFailuresError:
        if not records or records[-1]["index"] != optimum:
            raise
        return records  # In query order: one inline worker evaluates them in turn.
    for trial in result.trials:  # Sorted by id: the order of the proposals.
        if trial.status != sn.TrialStatus.COMPLETED:
            raise RuntimeError(f"{algorithm} seed {seed} trial {trial.id} failed: {trial.error}")
    return [{**trial.metrics, "reward": trial.reward} for trial in result.trials]


def _padded(records: list[dict], trials: int) -> list[dict]:
    """``records`` made ``trials`` long by repeating the last one (the optimum, when a
    search stopped there: the pick of every later budget)."""
    return records + [records[-1]] * (trials - len(records))


def _optuna_records(bench: NasBench201, seed: int, trials: int) -> list[dict]:
    """One Optuna study with ``TPESampler(seed=seed)``: each edge a categorical parameter."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ops = bench.table.OPS
    records: list[dict] = []

    optimum = optimum_index(bench)

    def objective(trial: optuna.Trial) -> float:
        codes = [
            ops.index(trial.suggest_categorical(f"edge{i}", ops))
            for i in range(len(bench.table.EDGES))
        ]
        records.append(bench.evaluate(codes))
        if records[-1]["index"] == optimum:
            study.stop()  # The pick stays the optimum (see the module docs).
        return records[-1]["reward"]

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=trials)
    return records


def run_job(job: tuple[str, int, tuple[int, ...], str]) -> RunResult:
    """Runs one (algorithm, seed) job: its searches, read at every budget.

    Args:
        job: ``(algorithm, seed, budgets, protocol)``; Optuna's studies are always
            read ``anytime`` (its sampler does not know the budget).
    """
    algorithm, seed, budgets, protocol = job
    bench = _bench()
    optimum = optimum_index(bench)
    fit_key, report_key = bench.fitness_column, bench.report_column
    budgets = tuple(budgets)
    max_budget = budgets[-1]

    def read(records: list[dict], marks: Sequence[int]) -> Trace:
        return trace(
            [r[fit_key] for r in records],
            [r[report_key] for r in records],
            [r["index"] == optimum for r in records],
            marks,
        )

    start = time.perf_counter()
    if algorithm == OPTUNA:
        records = _optuna_records(bench, seed, max_budget)
        trials, result = len(records), read(_padded(records, max_budget), budgets)
    elif protocol == "anytime" or algorithm in BUDGET_FREE:
        records = _search_records(bench, algorithm, seed, max_budget)
        trials, result = len(records), read(_padded(records, max_budget), budgets)
    else:
        fitness, reported, trials = [], [], 0
        for budget in budgets:
            records = _search_records(bench, algorithm, seed, budget)
            trials += len(records)
            last = read(_padded(records, budget), [budget])
            fitness.append(last.best_fitness[0])
            reported.append(last.best_report[0])
        result = Trace(tuple(fitness), tuple(reported), last.found_at)
    seconds = time.perf_counter() - start
    return RunResult(
        algorithm=algorithm,
        seed=seed,
        budgets=budgets,
        best_fitness=result.best_fitness,
        best_report=result.best_report,
        found_at=result.found_at,
        max_budget=max_budget,
        trials=trials,
        seconds=seconds,
    )


def _init_worker() -> None:
    torch.set_num_threads(1)
    _bench()


@dataclasses.dataclass
class Benchmark:
    """A finished benchmark: every run, with what is needed to report it.

    Attributes:
        runs: Every :class:`RunResult`, by algorithm then seed.
        algorithms: The algorithms, in the order given.
        budgets: The budgets (increasing).
        optuna_max_budget: The largest budget of Optuna's studies.
        protocol: ``"fixed"`` or ``"anytime"``.
        jobs: Processes used.
        seconds: Wall time of the whole benchmark.
        optimum: ``(official index, fitness, report)`` of the optimum.
        best_report: The highest report value in the table.
        best_report_cells: How many cells share it.
    """

    runs: dict[str, list[RunResult]]
    algorithms: list[str]
    budgets: tuple[int, ...]
    optuna_max_budget: int
    protocol: str
    jobs: int
    seconds: float
    optimum: tuple[int, float, float]
    best_report: float
    best_report_cells: int


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}, but got {value!r}")


def run_benchmark(
    *,
    algorithm_names: Sequence[str],
    seeds: int = 100,
    budgets: Sequence[int] = DEFAULT_BUDGETS,
    optuna_seeds: int | None = None,
    seeds_of: dict[str, int] | None = None,
    optuna_max_budget: int = DEFAULT_OPTUNA_MAX_BUDGET,
    protocol: str = "fixed",
    jobs: int = 2,
    log: Any = None,
) -> Benchmark:
    """Runs every (algorithm, seed) job, in a process pool when ``jobs > 1``.

    Args:
        algorithm_names: Registered algorithm names and/or :data:`OPTUNA`.
        seeds: Runs per algorithm (seeds ``0 .. seeds-1``).
        budgets: Increasing query budgets.
        optuna_seeds: Runs of Optuna's TPE (None: ``seeds``).
        seeds_of: Runs of particular algorithms, in place of ``seeds`` (for costly
            ones on a busy machine; the table shows each row's runs).
        optuna_max_budget: Trials of each Optuna study; it is read at the budgets
            up to it (and at itself when it is not one of them).
        protocol: One of :data:`PROTOCOLS`.
        jobs: Processes (one torch thread each); 1 runs in this process.
        log: A file for progress lines (None: silent).

    Raises:
        ValueError: An argument breaks its rule.

    Example:
        >>> bench = run_benchmark(algorithm_names=["random"], seeds=2, budgets=[5, 10], jobs=1)
        >>> [len(bench.runs["random"]), bench.runs["random"][0].budgets, bench.optimum[0]]
        [2, (5, 10), 13714]
    """
    known = [*algorithms.available(), OPTUNA]
    if isinstance(algorithm_names, str) or not algorithm_names:
        raise ValueError(f"`algorithms` must be a non-empty list, but got {algorithm_names!r}")
    for name in algorithm_names:
        if name not in known:
            raise ValueError(f"`algorithms` must hold names from {known}, but got {name!r}")
    if len(set(algorithm_names)) != len(algorithm_names):
        raise ValueError(f"`algorithms` must not repeat a name, but got {list(algorithm_names)}")
    _check_int("seeds", seeds, 1)
    budgets = tuple(budgets)
    if (
        not budgets
        or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in budgets)
        or list(budgets) != sorted(set(budgets))
    ):
        raise ValueError(f"`budgets` must be increasing ints >= 1, but got {list(budgets)!r}")
    optuna_seeds = seeds if optuna_seeds is None else optuna_seeds
    _check_int("optuna_seeds", optuna_seeds, 1)
    seeds_of = dict(seeds_of or {})
    for name, count in seeds_of.items():
        if name not in algorithm_names or name == OPTUNA:
            raise ValueError(
                f"`seeds_of` must name benchmarked algorithms other than {OPTUNA}, but got {name!r}"
            )
        _check_int(f"seeds_of[{name!r}]", count, 1)
    _check_int("optuna_max_budget", optuna_max_budget, 1)
    if protocol not in PROTOCOLS:
        raise ValueError(f"`protocol` must be one of {PROTOCOLS}, but got {protocol!r}")
    _check_int("jobs", jobs, 1)

    optuna_budgets = tuple(
        sorted({b for b in budgets if b <= optuna_max_budget} | {optuna_max_budget})
    )
    job_list = []
    most = max([seeds, optuna_seeds, *seeds_of.values()])
    for seed in range(most):  # Interleaved: balances the pool's load.
        for name in algorithm_names:
            if name == OPTUNA:
                if seed < optuna_seeds:
                    job_list.append((name, seed, optuna_budgets, "anytime"))
            elif seed < seeds_of.get(name, seeds):
                job_list.append((name, seed, budgets, protocol))

    bench = _bench()
    optimum = optimum_index(bench)
    row = bench.table.row_of_index(optimum)
    optimum_info = (
        optimum,
        float(bench.table.column(bench.fitness_column)[row]),
        float(bench.table.column(bench.report_column)[row]),
    )
    start = time.perf_counter()
    results: list[RunResult] = []
    step = max(1, len(job_list) // 20)
    if jobs == 1:
        for job in job_list:
            results.append(run_job(job))
            _progress(log, len(results), len(job_list), step, start)
    else:
        context = multiprocessing.get_context("spawn")
        with context.Pool(jobs, initializer=_init_worker) as pool:
            for result in pool.imap_unordered(run_job, job_list):
                results.append(result)
                _progress(log, len(results), len(job_list), step, start)
    seconds = time.perf_counter() - start
    reported = bench.table.column(bench.report_column)
    best_report = float(np.nanmax(reported))
    runs = {
        name: sorted((r for r in results if r.algorithm == name), key=lambda r: r.seed)
        for name in algorithm_names
    }
    return Benchmark(
        runs=runs,
        algorithms=list(algorithm_names),
        budgets=budgets,
        optuna_max_budget=optuna_max_budget,
        protocol=protocol,
        jobs=jobs,
        seconds=seconds,
        optimum=optimum_info,
        best_report=best_report,
        best_report_cells=int((reported == best_report).sum()),
    )


def _progress(log: Any, done: int, total: int, step: int, start: float) -> None:
    if log is not None and (done % step == 0 or done == total):
        print(f"  {done}/{total} runs, {time.perf_counter() - start:.0f} s", file=log, flush=True)


def _machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()}-core CPU ({model}), Python {platform.python_version()}"


def _versions() -> str:
    import importlib.metadata

    parts = [f"torch {torch.__version__}"]
    for package in ("optuna", "numpy", "pyglove"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            parts.append(f"{package} {importlib.metadata.version(package)}")
    return ", ".join(parts)


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated ints, but got {text!r}"
        ) from None


def _seed_counts(text: str) -> dict[str, int]:
    try:
        pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
        return {name.strip(): int(count) for name, count in pairs}
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated name=int pairs, but got {text!r}"
        ) from None


def main(argv: Sequence[str] | None = None) -> None:
    # "optuna"/"tpe" wrap the sampler the OPTUNA reference row already calls directly;
    # the others left out have their own benchmarks or no single-objective, table-sized
    # meaning: "fixed" replays given tokens, "successive_halving" schedules epochs,
    # "nsga2" (multi_objective.py), "learned_search" and "random_walk" (learned_search.py).
    skipped = ("optuna", "tpe", "fixed", "successive_halving", "nsga2", "learned_search",
               "random_walk")  # fmt: skip
    default_algorithms = [*(n for n in algorithms.available() if n not in skipped), OPTUNA]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100, help="runs per algorithm (100)")
    parser.add_argument(
        "--budgets",
        type=_int_list,
        default=list(DEFAULT_BUDGETS),
        help="comma-separated query budgets (25,50,100,150,300,1000)",
    )
    parser.add_argument(
        "--algorithms",
        type=lambda s: [p.strip() for p in s.split(",") if p.strip()],
        default=default_algorithms,
        help=f"comma-separated names ({','.join(default_algorithms)})",
    )
    parser.add_argument(
        "--optuna-seeds", type=int, default=None, help="runs of Optuna's TPE (--seeds)"
    )
    parser.add_argument(
        "--optuna-max-budget",
        type=int,
        default=DEFAULT_OPTUNA_MAX_BUDGET,
        help=f"trials per Optuna study ({DEFAULT_OPTUNA_MAX_BUDGET}; its cost grows with it)",
    )
    parser.add_argument(
        "--seeds-of",
        type=_seed_counts,
        default={},
        help="runs of particular algorithms, e.g. reinforce=20,ppo=20 (--seeds)",
    )
    parser.add_argument("--protocol", choices=PROTOCOLS, default="fixed")
    parser.add_argument("--jobs", type=int, default=2, help="processes, one torch thread each")
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--out", default=os.path.join(here, "RESULTS.md"), help="Markdown file")
    parser.add_argument(
        "--plot", default=None, help="PNG file (default: nb201_search.png beside --out)"
    )
    args = parser.parse_args(argv)
    plot = args.plot or os.path.join(os.path.dirname(os.path.abspath(args.out)), "nb201_search.png")
    command = shlex.join(
        [
            "python",
            os.path.relpath(os.path.abspath(__file__)),
            *(sys.argv[1:] if argv is None else argv),
        ]
    )
    torch.set_num_threads(1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    started = time.strftime("%Y-%m-%d %H:%M %Z")
    print(f"{command}\n{_machine()}; load average {load:.1f}", flush=True)
    try:
        bench = run_benchmark(
            algorithm_names=args.algorithms,
            seeds=args.seeds,
            budgets=args.budgets,
            optuna_seeds=args.optuna_seeds,
            seeds_of=args.seeds_of,
            optuna_max_budget=args.optuna_max_budget,
            protocol=args.protocol,
            jobs=args.jobs,
            log=sys.stderr,
        )
    except ValueError as e:
        parser.error(str(e))
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    summaries = report.summarize(bench)
    context = report.Context(
        command=command,
        date=started,
        machine=_machine(),
        versions=_versions(),
        load=(load, load_end),
        plot=os.path.relpath(os.path.abspath(plot), os.path.dirname(os.path.abspath(args.out))),
        full_seeds=100,
    )
    text = report.markdown(bench, summaries, context)
    print(report.console_table(bench, summaries))
    with contextlib.suppress(FileNotFoundError), open(args.out, encoding="utf-8") as f:
        tail = report.kept_tail(f.read())  # the hand-written sections stay
        text += f"\n{tail}" if tail else ""
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    report.plot(bench, summaries, plot)
    print(f"wrote {args.out} and {plot}; total {bench.seconds:.0f} s")


if __name__ == "__main__":
    main()
