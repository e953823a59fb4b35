"""Markdown and the plot of ``benchmarks/nb201_search.py`` (issues #5 and #12).

Kept apart from the runner so the figures can be checked without running searches; the
summaries and goals live in ``nb201_search_goals.py`` and are re-exported here.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from nb201_search_goals import (  # the sibling module (the script's folder is on sys.path)
    OPTUNA,
    Goal,
    Summary,
    best_algorithm,
    goals,
    median_queries,
    median_text,
    summarize,
    tpe_goals,
    welch_t,
)

__all__ = [
    "KEEP_MARKER",
    "OPTUNA",
    "REFERENCES",
    "Context",
    "Goal",
    "Reference",
    "Summary",
    "best_algorithm",
    "console_table",
    "goals",
    "kept_tail",
    "markdown",
    "median_queries",
    "plot",
    "summarize",
    "tpe_goals",
    "welch_t",
]

#: Where the hand-written part of ``RESULTS.md`` begins: a rewrite keeps it.
KEEP_MARKER = "<!-- Written by hand from here on: nb201_search.py keeps it when it rewrites. -->"


@dataclasses.dataclass(frozen=True)
class Reference:
    """A quoted (not measured) row: figures copied from issue #5 or a paper.

    Attributes:
        label: What was measured, by whom.
        runs: Number of runs, as quoted.
        figures: ``{budget: (mean, std)}`` of the test accuracy of the pick.
        median: Median queries to the optimum, as quoted ("" when not given).
        note: Anything else quoted (e.g. a paper's figure at its own budget).
    """

    label: str
    runs: str
    figures: dict[int, tuple[float, float]]
    median: str = ""
    note: str = ""


#: The reference points of issue #5 (measured there on the same table) and the paper's.
REFERENCES: tuple[Reference, ...] = (
    Reference(
        "random search, textbook",
        "500",
        {50: (93.47, 0.57), 100: (93.76, 0.33), 300: (93.95, 0.23), 1000: (94.07, 0.23)},
        median="~7,800",
    ),
    Reference(
        "regularized evolution, textbook (population 10, tournament 3, one-edge mutation)",
        "200",
        {100: (93.97, 0.38), 300: (94.23, 0.22)},
        median="375",
    ),
    Reference(
        "REINFORCE, textbook per-edge softmax (lr 0.5, baseline momentum 0.9)",
        "200",
        {100: (93.87, 0.28), 300: (94.14, 0.23)},
    ),
    Reference(
        "Optuna 5.0 TPESampler, default settings",
        "50 (30 at 300)",
        {50: (93.92, 0.44), 100: (94.17, 0.25), 300: (94.35, 0.08)},
        median="139",
    ),
    Reference(
        "REA, NAS-Bench-201 paper (Dong and Yang 2020)",
        "",
        {},
        note="93.92 ± 0.30 at the paper's own search budget",
    ),
    Reference(
        "REINFORCE, NAS-Bench-201 paper (Dong and Yang 2020)",
        "",
        {},
        note="93.85 ± 0.37 at the paper's own search budget",
    ),
)

# Marker of each quoted row in the plot, and the measured algorithm whose colour it takes.
_REFERENCE_STYLE = {
    "random search": ("s", "random"),
    "regularized evolution": ("^", "evolution"),
    "REINFORCE": ("v", "reinforce"),
    "Optuna 5.0 TPESampler": ("D", OPTUNA),
}


@dataclasses.dataclass(frozen=True)
class Context:
    """How and where a benchmark ran (for the Markdown header).

    Attributes:
        command: The command line.
        date: When it started.
        machine: CPU and Python.
        versions: Library versions.
        load: Load average at the start and at the end.
        plot: Path of the PNG relative to the Markdown file.
        full_seeds: Seeds of a full run; fewer marks the file as a development run.
    """

    command: str
    date: str
    machine: str
    versions: str
    load: tuple[float, float]
    plot: str
    full_seeds: int = 100


def _label(name: str, bench: Any) -> str:
    if name == OPTUNA:
        return (
            f"**Optuna TPE** (reference, measured; `TPESampler(seed)` defaults, "
            f"studies of {bench.optuna_max_budget} trials)"
        )
    return f"**{name}**"


def _table(bench: Any, summaries: dict[str, Summary], *, references: bool) -> list[str]:
    budgets = bench.budgets
    header = [
        "algorithm",
        "runs",
        *(str(b) for b in budgets),
        "median queries to optimum",
        "found",
        "ms / query",
        "run time",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, s in summaries.items():
        cells = [_label(name, bench), str(s.runs)]
        cells += [f"{s.mean[b]:.2f} ± {s.std[b]:.2f}" if b in s.mean else "—" for b in budgets]
        cells += [
            median_text(s),
            f"{s.found:.0%} (≤ {s.max_budget})",
            f"{s.ms_per_query:.2f}",
            f"{s.seconds:.0f} s",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if references:
        for ref in REFERENCES:
            cells = [f"*quoted:* {ref.label}", ref.runs or "—"]
            for b in budgets:
                figure = ref.figures.get(b)
                cells.append(f"*{figure[0]:.2f} ± {figure[1]:.2f}*" if figure else "—")
            cells += [ref.median or "—", ref.note or "—", "—", "—"]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def _welch_table(bench: Any, summaries: dict[str, Summary]) -> list[str]:
    """Welch's t of each algorithm against Optuna's TPE at each budget (issue #12)."""
    tpe = summaries.get(OPTUNA)
    if tpe is None:
        return []
    budgets = [b for b in bench.budgets if b in tpe.mean]
    lines = [
        "## Against Optuna's TPE (Welch's t of the difference in means)",
        "",
        "| algorithm | " + " | ".join(str(b) for b in budgets) + " |",
        "|---|" + "---|" * len(budgets),
    ]
    for name, s in summaries.items():
        if name == OPTUNA:
            continue
        cells = []
        for b in budgets:
            t = welch_t(s, tpe, b)
            cells.append("—" if math.isnan(t) else f"{s.mean[b] - tpe.mean[b]:+.2f} (t = {t:.1f})")
        lines.append(f"| **{name}** | " + " | ".join(cells) + " |")
    return [*lines, ""]


def console_table(bench: Any, summaries: dict[str, Summary]) -> str:
    """The measured table and the goals, for the terminal."""
    lines = _table(bench, summaries, references=False)
    lines.append("")
    lines += [f"[{g.status}] {g.text}: {g.detail}" for g in goals(summaries)]
    return "\n".join(lines)


def markdown(bench: Any, summaries: dict[str, Summary], context: Context) -> str:
    """The whole ``RESULTS.md``: header, table, goals and the plot."""
    tpe_seeds = len(bench.runs.get(OPTUNA, ()))
    seeds = max((s.runs for n, s in summaries.items() if n != OPTUNA), default=0)
    lines = ["# NAS-Bench-201 search efficiency (issues #5 and #12)", ""]
    if seeds < context.full_seeds:
        lines += [
            f"> **Development run ({seeds} seeds"
            + (f", {tpe_seeds} for Optuna's TPE" if tpe_seeds else "")
            + "): not the benchmark's figures.** The full run is "
            "`python benchmarks/nb201_search.py` "
            f"({context.full_seeds} seeds).",
            "",
        ]
    protocol = {
        "fixed": "one search of B trials per budget B (each algorithm is told its budget, as a "
        "user with B queries would run it); the median queries to the optimum come from the "
        "search of the largest budget",
        "anytime": "one search of the largest budget per run, read at every budget",
    }[bench.protocol]
    index, fitness, reported = bench.optimum
    lines += [
        "Written by `benchmarks/nb201_search.py`. Every algorithm searches the NAS-Bench-201 "
        "cell space (15,625 cells) through `sn.search` (inline, in memory). Protocol of the "
        "NAS-Bench-201 paper: the search's reward is `c10valid_val_12`; the figure at B "
        "queries is `c10_test_200` of the best of the first B trials by reward (first found "
        f"on ties), mean ± std over runs. Protocol `{bench.protocol}`: {protocol}. Optuna's "
        "TPE (each edge `suggest_categorical`) runs in the same benchmark as a reference row.",
        "",
        f"- Command: `{context.command}`",
        f"- Date: {context.date}",
        f"- Machine: {context.machine}; {context.versions}",
        f"- Load average: {context.load[0]:.1f} at the start, {context.load[1]:.1f} at the end "
        "(a shared box: timings are noisy)",
        f"- Total wall time: {bench.seconds:.0f} s with {bench.jobs} process(es), one torch "
        "thread each",
        *(
            [
                "- Fewer runs (`--seeds-of`, for cost): "
                + ", ".join(f"{n} {s.runs}" for n, s in summaries.items() if s.runs < seeds)
            ]
            if any(s.runs < seeds for n, s in summaries.items() if n != OPTUNA)
            else []
        ),
        f"- Optimum: index {index}, {fitness:g} validation (the unique maximum of the reward), "
        f"{reported:.2f} test (the table's best test accuracy is {bench.best_report:.2f}, "
        f"held by {bench.best_report_cells} cell(s); only the reward's arg-max counts as found)",
        "",
        "## Test accuracy of the pick at each budget (queries)",
        "",
        *_table(bench, summaries, references=True),
        "",
        "*found*: runs that proposed the optimum within their largest search (≤ that many "
        'queries); the median is "> N" when fewer than half did. *ms / query* and *run time* '
        "are summed over the runs (each run on one process), so the elapsed time is about "
        "run time / processes. *Quoted* rows are copied from issue #5 (measured there on the "
        "same table; Optuna's row by the issue's author) and from the NAS-Bench-201 paper: "
        "they were not measured in this run.",
        "",
        "## Goals",
        "",
        "| goal | status | measured |",
        "|---|---|---|",
    ]
    lines += [f"| {g.text} | **{g.status}** | {g.detail} |" for g in goals(summaries)]
    lines += [
        "",
        'A mean meets a quoted target when it is at least the target. "Beats random search" '
        "needs a difference of at least two standard errors (Welch's t ≥ 2).",
        "",
        *_welch_table(bench, summaries),
    ]
    lines += [
        "## Test accuracy against queries",
        "",
        f"![mean test accuracy of the pick against queries]({context.plot})",
        "",
        "Mean over runs with a band of ± one standard error of the mean; the dashed line is "
        "the optimum. Hollow markers are quoted figures (not measured here), in the colour of "
        "the measured algorithm they compare with.",
        "",
    ]
    return "\n".join(lines)


def kept_tail(previous: str) -> str:
    """The hand-written part of a previous ``RESULTS.md`` (from :data:`KEEP_MARKER` on).

    Example:
        >>> kept_tail("# generated\\n\\n" + KEEP_MARKER + "\\n## by hand\\n")[-11:]
        '## by hand\\n'
        >>> kept_tail("# generated only\\n")
        ''
    """
    at = previous.find(KEEP_MARKER)
    return "" if at < 0 else previous[at:]


def plot(bench: Any, summaries: dict[str, Summary], path: str) -> None:
    """Writes the PNG: mean test accuracy of the pick against queries (log x)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    for name, s in summaries.items():
        xs = list(s.budgets)
        ys = [s.mean[b] for b in xs]
        se = [s.standard_error(b) if s.runs > 1 else 0.0 for b in xs]
        label = "Optuna TPE (measured)" if name == OPTUNA else name
        style = "--" if name == OPTUNA else "-"
        (line,) = ax.plot(xs, ys, style, marker="o", markersize=4, label=label)
        ax.fill_between(
            xs,
            [y - e for y, e in zip(ys, se)],
            [y + e for y, e in zip(ys, se)],
            color=line.get_color(),
            alpha=0.2,
            linewidth=0,
        )
    colors = {name: line.get_color() for name, line in zip(summaries, ax.get_lines())}
    for ref in REFERENCES:
        if not ref.figures:
            continue
        marker, measured = _REFERENCE_STYLE[ref.label.split(",")[0]]
        xs = sorted(ref.figures)
        ax.scatter(
            xs,
            [ref.figures[x][0] for x in xs],
            marker=marker,
            s=36,
            facecolors="none",
            edgecolors=colors.get(measured, "0.4"),
            linewidths=1.3,
            label=f"quoted: {ref.label.split(' (')[0]}",
            zorder=3,
        )
    ax.axhline(bench.optimum[2], color="0.3", linestyle=":", linewidth=1)
    ax.text(
        bench.budgets[0],
        bench.optimum[2] + 0.02,
        f"optimum {bench.optimum[2]:.2f}",
        fontsize=8,
        color="0.3",
    )
    ax.set_xscale("log")
    ax.set_xticks(list(bench.budgets))
    ax.set_xticklabels([str(b) for b in bench.budgets])
    ax.minorticks_off()
    ax.set_xlabel("queries (architectures evaluated)")
    ax.set_ylabel("CIFAR-10 test accuracy of the pick (%)")
    seeds = max((s.runs for n, s in summaries.items() if n != OPTUNA), default=0)
    ax.set_title(f"NAS-Bench-201: best-so-far by validation accuracy ({seeds} seeds)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right", ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
