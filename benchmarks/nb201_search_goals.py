"""Summaries and goals of ``benchmarks/nb201_search.py`` (issues #5 and #12).

The statistics (per-algorithm summaries, median queries to the optimum, Welch's t) and
the goals the report checks, kept apart from the Markdown and the plot
(``nb201_search_report.py``, which re-exports them). Standard deviations are over runs
(``ddof=0``, as NAS-Bench-201's own code); the median queries to the optimum treats
runs that never found it as censored at their largest search (see
:func:`median_queries`).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Sequence
from typing import Any

from symbolic_nas import algorithms

__all__ = ["OPTUNA", "Goal", "Summary", "best_algorithm", "goals", "median_queries",
           "median_text", "summarize", "tpe_goals", "welch_t"]  # fmt: skip

#: The name of Optuna's reference row.
OPTUNA = "optuna_tpe"

# Issue #5's targets.
_TPE_AT_100, _TPE_AT_300, _TPE_MEDIAN = 94.17, 94.33, 150
_EVOLUTION_TEXTBOOK = {100: 93.97, 300: 94.23}
_EVOLUTION_MEDIAN = 375


def median_queries(found_at: Sequence[int | None]) -> float:
    """Median queries to the optimum, runs that never found it counted as infinite.

    The result is finite exactly when more than half the runs found it.

    Example:
        >>> median_queries([10, 20, None]), median_queries([10, None, None, 30])
        (20, inf)
    """
    if not found_at:
        raise ValueError("`found_at` must hold at least one run, but got none")
    return statistics.median(math.inf if f is None else f for f in found_at)


@dataclasses.dataclass(frozen=True)
class Summary:
    """One algorithm's figures over its runs.

    Attributes:
        algorithm: Its name.
        runs: Number of runs.
        budgets: The budgets read.
        mean: ``{budget: mean test accuracy of the pick}``.
        std: ``{budget: its standard deviation over runs}`` (``ddof=0``).
        median_to_optimum: :func:`median_queries` (inf: fewer than half found it).
        found: Share of runs that proposed the optimum within ``max_budget``.
        max_budget: Queries of the largest search.
        trials: Trials run in all.
        seconds: Wall time summed over the runs.
    """

    algorithm: str
    runs: int
    budgets: tuple[int, ...]
    mean: dict[int, float]
    std: dict[int, float]
    median_to_optimum: float
    found: float
    max_budget: int
    trials: int
    seconds: float

    @property
    def ms_per_query(self) -> float:
        return 1e3 * self.seconds / self.trials

    def standard_error(self, budget: int) -> float:
        return self.std[budget] / math.sqrt(self.runs) if self.runs > 1 else math.nan


def summarize(bench: Any) -> dict[str, Summary]:
    """A :class:`Summary` per algorithm of a finished benchmark (``nb201_search.Benchmark``)."""
    out = {}
    for name in bench.algorithms:
        runs = bench.runs[name]
        if not runs:
            continue
        budgets = runs[0].budgets
        mean, std = {}, {}
        for i, budget in enumerate(budgets):
            values = [r.best_report[i] for r in runs]
            mean[budget] = statistics.fmean(values)
            std[budget] = statistics.pstdev(values)
        found = [r.found_at for r in runs]
        out[name] = Summary(
            algorithm=name,
            runs=len(runs),
            budgets=budgets,
            mean=mean,
            std=std,
            median_to_optimum=median_queries(found),
            found=sum(f is not None for f in found) / len(found),
            max_budget=runs[0].max_budget,
            trials=sum(r.trials for r in runs),
            seconds=sum(r.seconds for r in runs),
        )
    return out


@dataclasses.dataclass(frozen=True)
class Goal:
    """One goal of issue #5, checked against the measured figures.

    Attributes:
        text: The goal.
        status: ``"met"``, ``"missed"``, ``"not significant"`` or ``"not measured"``.
        detail: The measured figures behind the status.
    """

    text: str
    status: str
    detail: str


def _figure(summary: Summary, budget: int) -> str:
    return (
        f"{summary.mean[budget]:.2f} ± {summary.std[budget]:.2f} "
        f"(SE {summary.standard_error(budget):.2f}, {summary.runs} runs)"
    )


def median_text(summary: Summary) -> str:
    if math.isinf(summary.median_to_optimum):
        return f"> {summary.max_budget}"
    return f"{summary.median_to_optimum:g}"


def _at_least(text: str, summary: Summary | None, budget: int, target: float, extra: str) -> Goal:
    if summary is None or budget not in summary.mean:
        return Goal(text, "not measured", f"no runs at {budget} queries")
    met = round(summary.mean[budget], 2) >= target  # The targets are quoted to 2 decimals.
    return Goal(text, "met" if met else "missed", _figure(summary, budget) + extra)


def _median_at_most(text: str, summary: Summary | None, target: float) -> Goal:
    if summary is None:
        return Goal(text, "not measured", "no runs")
    met = summary.median_to_optimum <= target
    detail = f"median {median_text(summary)} queries, {summary.found:.0%} of runs found it"
    if summary.max_budget < target and not met:
        return Goal(text, "not measured", detail + f" (searches of only {summary.max_budget})")
    return Goal(text, "met" if met else "missed", detail)


def _beats(name: str, summary: Summary, random: Summary, budget: int) -> Goal:
    text = f"{name} beats random search at {budget} queries"
    if budget not in summary.mean or budget not in random.mean:
        return Goal(text, "not measured", f"no runs at {budget} queries")
    diff = summary.mean[budget] - random.mean[budget]
    se = math.hypot(summary.standard_error(budget), random.standard_error(budget))
    t = diff / se if se > 0 else (math.inf if diff > 0 else -math.inf)
    detail = (
        f"{summary.mean[budget]:.2f} vs {random.mean[budget]:.2f}: "
        f"difference {diff:+.2f}, Welch t = {t:.1f}"
    )
    if diff <= 0:
        return Goal(text, "missed", detail)
    return Goal(text, "met" if t >= 2 else "not significant", detail)


def welch_t(summary: Summary, other: Summary, budget: int) -> float:
    """Welch's t of ``summary``'s mean minus ``other``'s at ``budget`` (nan if unmeasured).

    Example:
        >>> a = Summary("a", 4, (10,), {10: 2.0}, {10: 1.0}, 10.0, 1.0, 10, 40, 1.0)
        >>> b = Summary("b", 4, (10,), {10: 1.0}, {10: 1.0}, 10.0, 1.0, 10, 40, 1.0)
        >>> round(welch_t(a, b, 10), 3)
        1.414
    """
    if budget not in summary.mean or budget not in other.mean:
        return math.nan
    diff = summary.mean[budget] - other.mean[budget]
    se = math.hypot(summary.standard_error(budget), other.standard_error(budget))
    return diff / se if se > 0 else (math.inf if diff > 0 else -math.inf if diff < 0 else 0.0)


#: Issue #12's budgets: the best algorithm must be ahead of TPE at each (t >= 2).
_TPE_BUDGETS = (25, 50, 100, 150, 300)
_BEST_MEDIAN = 100
_REINFORCE_BUDGETS = (50, 100)


def best_algorithm(summaries: dict[str, Summary]) -> str | None:
    """The library's algorithm ahead of Optuna's TPE (Welch t >= 2) at the most of
    issue #12's budgets; ties go to the lower median queries to the optimum."""
    tpe = summaries.get(OPTUNA)
    if tpe is None:
        return None
    names = [n for n in summaries if n != OPTUNA]

    def key(name: str) -> tuple[int, float]:
        ahead = sum(welch_t(summaries[name], tpe, b) >= 2 for b in _TPE_BUDGETS)
        return (-ahead, summaries[name].median_to_optimum)

    return min(names, key=key) if names else None


def tpe_goals(summaries: dict[str, Summary]) -> list[Goal]:
    """Issue #12's goals: the best algorithm against Optuna's TPE, and ``reinforce``."""
    tpe = summaries.get(OPTUNA)
    best = best_algorithm(summaries)
    if tpe is None or best is None:
        return [Goal("issue #12: the best algorithm ahead of Optuna TPE", "not measured", "")]
    s = summaries[best]
    ts = {b: welch_t(s, tpe, b) for b in _TPE_BUDGETS}
    measured = [b for b in _TPE_BUDGETS if not math.isnan(ts[b])]
    detail = "; ".join(
        f"{b}: {s.mean[b]:.2f} vs {tpe.mean[b]:.2f}, t = {ts[b]:.1f}" for b in measured
    )
    if not measured:
        status = "not measured"
    else:
        status = "met" if all(ts[b] >= 2 for b in measured) else "missed"
    out = [
        Goal(
            f"best algorithm ({best}) ahead of Optuna TPE at every budget 25–300 (Welch t ≥ 2)",
            status,
            detail,
        ),
        _median_at_most(
            f"best algorithm ({best}): median queries to the optimum ≤ {_BEST_MEDIAN}",
            s,
            _BEST_MEDIAN,
        ),
    ]
    last = out[-1]
    out[-1] = dataclasses.replace(
        last, detail=last.detail + f"; Optuna TPE in this run: median {median_text(tpe)}"
    )
    reinforce = summaries.get("reinforce")
    for b in _REINFORCE_BUDGETS:
        text = f"reinforce (predictor screening) ≥ Optuna TPE at {b} queries"
        if reinforce is None or b not in reinforce.mean or b not in tpe.mean:
            out.append(Goal(text, "not measured", ""))
            continue
        t = welch_t(reinforce, tpe, b)
        met = reinforce.mean[b] >= tpe.mean[b]
        out.append(
            Goal(
                text,
                "met" if met else "missed",
                f"{reinforce.mean[b]:.2f} vs {tpe.mean[b]:.2f} (Welch t = {t:.1f})",
            )
        )
    return out


def goals(summaries: dict[str, Summary]) -> list[Goal]:
    """Issue #5's goals, each checked against the measured summaries.

    A mean "meets" a quoted target when it is at least the target; "beats random
    search" needs a positive difference of at least two standard errors (Welch's
    t >= 2), else it is "not significant".
    """
    reinforce = summaries.get("reinforce")
    tpe = summaries.get(OPTUNA)

    def tpe_at(budget: int) -> str:
        if tpe is None or budget not in tpe.mean:
            return ""
        return f"; Optuna TPE in this run: {tpe.mean[budget]:.2f} ± {tpe.std[budget]:.2f}"

    tpe_median = (
        f"; Optuna TPE in this run: median {median_text(tpe)}, {tpe.found:.0%} found"
        if tpe is not None
        else ""
    )
    out = [
        _at_least(
            f"reinforce ≥ {_TPE_AT_100} at 100 queries (Optuna TPE's level)",
            reinforce,
            100,
            _TPE_AT_100,
            tpe_at(100),
        ),
        _at_least(
            f"reinforce ≥ {_TPE_AT_300} at 300 queries", reinforce, 300, _TPE_AT_300, tpe_at(300)
        ),
        _median_at_most(
            f"reinforce: median queries to the optimum ≤ {_TPE_MEDIAN}", reinforce, _TPE_MEDIAN
        ),
    ]
    last = out[-1]
    out[-1] = dataclasses.replace(last, detail=last.detail + tpe_median)
    evolution = summaries.get("evolution")
    for budget, target in _EVOLUTION_TEXTBOOK.items():
        out.append(
            _at_least(
                f"evolution ≥ textbook regularized evolution ({target}) at {budget} queries",
                evolution,
                budget,
                target,
                "",
            )
        )
    out.append(
        _median_at_most(
            f"evolution: median queries to the optimum ≤ textbook ({_EVOLUTION_MEDIAN})",
            evolution,
            _EVOLUTION_MEDIAN,
        )
    )
    out += tpe_goals(summaries)
    random = summaries.get("random")
    for name, summary in summaries.items():
        if name == OPTUNA or not type(algorithms.get(name)).learns:
            continue
        if random is None:
            out.append(Goal(f"{name} beats random search at 300 queries", "not measured", ""))
        else:
            out.append(_beats(name, summary, random, 300))
    return out
