"""``symbolic-nas report``'s output: the text report, and the CSV/JSON export.

Both read the run directory read-only (:func:`symbolic_nas.storage.reader.read_run`):
the space need not be importable, the run may be running, and nothing is written.
Rows are :meth:`~symbolic_nas.storage.trial.SearchResult.to_records`, plus each
trial's ``rank`` and ``choices`` (``decision=label`` pairs).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

import click

from symbolic_nas.cli_output import cell, failure_lines

__all__ = ["check_columns", "export", "format_report", "report_rows"]


def format_report(run_dir: str, *, top: int = 5, columns: Sequence[str] | None = None) -> str:
    """A text report of a run directory: progress, the top trials, the failures.

    Reads only the config and the journal, read-only (the space need not be
    importable, and the run may be running). The table shows the reward, every
    scalar metric, the trial's seconds and its choices (``decision=label``), or the
    ``columns`` given (any key of :meth:`~symbolic_nas.storage.trial.SearchResult.to_records`,
    or ``rank``).

    Raises:
        click.BadParameter: If a column is unknown.
    """
    from symbolic_nas.storage.reader import read_run

    records = read_run(run_dir)
    config, history = records.config, records.history
    result, torn = records.result(), records.torn
    lines = [
        f"run {run_dir}: algorithm {config.get('algorithm')}, seed {config.get('seed')}, "
        f"{history.sessions} session(s)",
        f"trials: {len(result.trials)} of {config.get('num_trials')} finished, "
        f"{len(result.completed)} completed, {len(result.failed)} failed, "
        + (f"{len(result.pruned)} pruned, " if result.pruned else "")
        + f"{len(history.unfinished)} unfinished",
    ]
    lines.append(_evaluation_line(config, result))
    if torn:
        lines.append(
            "note: the journal's last line is torn (a write cut short by a crash); it is "
            "ignored here, and `symbolic-nas resume` repairs it"
        )
    ranked = result.top(top)
    if ranked:
        rows = report_rows(result, ranked)
        header = check_columns(rows, columns) if columns else _default_columns(ranked, rows)
        table = [[cell(row.get(name)) for name in header] for row in rows]
        titles = [_HEADERS.get(name, name) for name in header]
        lines += ["", f"top {len(ranked)}:", *_table(titles, table)]
    lines += _pareto_lines(result, columns)
    if result.failed:
        lines += ["", *failure_lines(result.failed)]
    return "\n".join(lines)


def _pareto_lines(result: Any, columns: Sequence[str] | None) -> list[str]:
    """The Pareto front of a run with several objectives (issue 11), by the first objective."""
    if not result.objectives:
        return []
    front = result.pareto_front()
    if not front:
        return []
    names = list(result.objectives)
    rows = report_rows(result, front)
    header = ["id", *names, "reward", "choices"] if not columns else check_columns(rows, columns)
    table = [[cell(row.get(name)) for name in header] for row in rows]
    titles = [_HEADERS.get(name, name) for name in header]
    goals = ", ".join(f"{n} ({d})" for n, d in result.objectives.items())
    return ["", f"Pareto front ({len(front)} trials; {goals}):", *_table(titles, table)]


_HEADERS = {"id": "trial", "duration": "seconds"}


def _evaluation_line(config: dict[str, Any], result: Any) -> str:
    """How the run scored its children: shared weights (with the pool's size) or stand-alone."""
    settings = config.get("evaluator_settings") or config.get("evaluator") or "?"
    if config.get("evaluation") != "shared_weights":
        return f"evaluation: stand-alone (each child trained on its own) by {settings}"
    last = next((t for t in reversed(result.trials) if "pool_parameters" in t.metrics), None)
    pool = (
        f"; pool after trial {last.id}: {last.metrics['pool_parameters']:,} parameters in "
        f"{last.metrics.get('pool_modules', '?')} modules"
        if last is not None
        else ""
    )
    return f"evaluation: shared weights (one pool for every child) by {settings}{pool}"


def report_rows(result: Any, trials: Sequence[Any]) -> list[dict[str, Any]]:
    """The records (:meth:`~symbolic_nas.storage.trial.SearchResult.to_records`) of
    ``trials`` in their order, with their ``rank`` and ``choices`` (``decision=label``
    pairs, or the tokens of a run journaled before labels were)."""
    by_id = {record["id"]: record for record in result.to_records()}
    rows = []
    for rank, trial in enumerate(trials, 1):
        labels = trial.choice_labels()
        choices = " ".join(f"{name}={label}" for name, label in labels.items())
        rows.append(
            {
                "rank": rank,
                **by_id[trial.id],
                "choices": choices or "tokens " + " ".join(map(str, trial.tokens)),
            }
        )
    return rows


def check_columns(rows: list[dict[str, Any]], columns: Sequence[str]) -> list[str]:
    """``columns``, each a key of one of ``rows``.

    Raises:
        click.BadParameter: Naming the unknown columns and the known ones.
    """
    known: dict[str, None] = {}
    for row in rows:
        known.update(dict.fromkeys(row))
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise click.BadParameter(
            f"unknown column(s) {', '.join(map(repr, unknown))}; this run's columns are: "
            + ", ".join(known),
            param_hint="--columns",
        )
    return list(columns)


def _default_columns(trials: Sequence[Any], rows: list[dict[str, Any]]) -> list[str]:
    """rank, trial id, reward, every scalar metric, seconds and choices."""
    metrics: dict[str, None] = {}
    for trial, row in zip(trials, rows):
        for name, value in trial.metrics.items():
            scalar = isinstance(value, (int, float)) and not isinstance(value, bool)
            if name != "reward" and scalar:
                metrics[name if row.get(name) is value else f"metric:{name}"] = None
    return ["rank", "id", "reward", *metrics, "duration", "choices"]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return ["  ".join(c.rjust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]]


def export(run_dir: str, output_format: str, *, top: int | None, columns: list[str] | None) -> str:
    """Every finished trial (or the best ``top``) of ``run_dir`` as CSV or JSON text."""
    from symbolic_nas.storage.reader import read_run

    result = read_run(run_dir).result()
    trials = result.top(top) if top is not None else result.trials
    rows = report_rows(result, trials)
    if top is None:
        for row in rows:
            del row["rank"]
    if columns:
        names = check_columns(rows, columns) if rows else list(columns)
        rows = [{name: row.get(name) for name in names} for row in rows]
    else:
        known: dict[str, None] = {}
        for row in rows:
            known.update(dict.fromkeys(row))
        names = list(known)
    if output_format == "json":
        return json.dumps(rows, indent=2) + "\n"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                name: json.dumps(value) if isinstance(value, (list, dict)) else value
                for name, value in row.items()
            }
        )
    return buffer.getvalue()
