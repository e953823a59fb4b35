"""What the ``symbolic-nas`` command prints, and how it serves TensorBoard.

A search's summary (the best trial with its decisions' labels and metrics, the
failures grouped by error), library messages reworded for the command line
(``--resume`` rather than ``resume=True``), and a child process that stops with
the command.
"""

from __future__ import annotations

import collections
import signal
import subprocess
from typing import Any

__all__ = ["cell", "failure_lines", "for_command_line", "format_best", "format_summary", "serve"]


#: Library wording (``sn.search``'s keyword arguments) -> command-line wording.
_COMMAND_LINE_WORDS = [
    ("pass resume=True to continue it", "pass --resume to continue it"),
    ("continue with resume=True", "continue with `symbolic-nas resume RUN_DIR`"),
    ("resume=True", "--resume"),
    ("executor='inline'", "--executor inline"),
    ("workers=1", "--workers 1"),
    ("give run_dir", "give --run-dir"),
    ("another run_dir", "another --run-dir"),
    ("a new run_dir", "a new --run-dir"),
    ("`run_dir`", "--run-dir"),
    ("`num_trials`", "--num-trials"),
    ("`workers`", "--workers"),
    ("`trial_timeout`", "--trial-timeout"),
    ("`failure_reward`", "--failure-reward"),
    ("`max_consecutive_failures`", "--max-consecutive-failures"),
    ("(max_consecutive_failures=", "(--max-consecutive-failures="),
]


def for_command_line(message: str) -> str:
    """A library error message worded for the command line (``--resume``, not ``resume=True``).

    Example:
        >>> for_command_line("`run_dir` 'r' already holds a run; pass resume=True to continue it")
        "--run-dir 'r' already holds a run; pass --resume to continue it"
    """
    for library, command_line in _COMMAND_LINE_WORDS:
        message = message.replace(library, command_line)
    return message


def format_best(result: Any) -> str:
    """The best trial of a search: id, reward, every decision's label and the metrics.

    Example:
        >>> import symbolic_nas as sn
        >>> result = sn.search({"k": sn.oneof([1, 2])}, lambda a: {"reward": a["k"], "n": 3},
        ...                    algorithm="random", num_trials=4, progress=False)
        >>> print(format_best(result))
        best: trial 0, reward 2
          k = 2
          metrics: n=3
    """
    best = result.best
    if best is None:
        return "best: none (no trial completed)"
    lines = [f"best: trial {best.id}, reward {cell(best.reward)}"]
    codec = best.codec or result.codec
    labels = codec.labels(best.tokens, best.floats) if codec is not None else {}
    lines += [f"  {name} = {label}" for name, label in labels.items()]
    metrics = {k: v for k, v in best.metrics.items() if k != "reward"}
    if metrics:
        lines.append("  metrics: " + ", ".join(f"{k}={cell(v)}" for k, v in metrics.items()))
    return "\n".join(lines)


def format_summary(result: Any) -> str:
    """A search without a run directory: the counts, the best trial and the failures.

    Example:
        >>> import symbolic_nas as sn
        >>> def evaluate(arch):
        ...     if arch["k"] == 1:
        ...         raise ValueError("k=1 does not fit")
        ...     return 1.0
        >>> result = sn.search({"k": sn.oneof([1, 2])}, evaluate, algorithm="random",
        ...                    num_trials=3, progress=False, seed=1)
        >>> print(format_summary(result))  # doctest: +ELLIPSIS
        3 trials: ... completed, ... failed
        best: trial ..., reward 1
          k = 2
        <BLANKLINE>
        failures (...):
          ... x ValueError: k=1 does not fit  (trials ...)
    """
    lines = [
        f"{len(result.trials)} trials: {len(result.completed)} completed, "
        f"{len(result.failed)} failed"
        + (f", {len(result.pruned)} pruned" if result.pruned else ""),
        format_best(result),
    ]
    if result.failed:
        lines += ["", *failure_lines(result.failed)]
    return "\n".join(lines)


def failure_lines(failed: list[Any]) -> list[str]:
    """Failed trials grouped by the first line of their error, most frequent first."""
    groups: dict[str, list[int]] = collections.defaultdict(list)
    for t in failed:
        groups[(t.error or "unknown error").splitlines()[0][:120]].append(t.id)
    lines = [f"failures ({len(failed)}):"]
    for error, ids in sorted(groups.items(), key=lambda item: -len(item[1])):
        shown = ", ".join(map(str, ids[:8])) + (", ..." if len(ids) > 8 else "")
        lines.append(f"  {len(ids)} x {error}  (trials {shown})")
    return lines


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def serve(command: list[str]) -> int:
    """Runs ``command`` until it exits; SIGTERM, SIGHUP or Ctrl-C here stops it too.

    Returns:
        Its exit status, or 128 + the signal's number when stopped by one.
    """
    child = subprocess.Popen(command)
    received: list[int] = []

    def stop(signum: int, frame: Any) -> None:
        del frame
        received.append(signum)
        if len(received) == 1:
            child.terminate()
        else:  # Asked again: do not wait for it.
            child.kill()

    handled = [signal.SIGTERM, signal.SIGINT] + (
        [signal.SIGHUP] if hasattr(signal, "SIGHUP") else []
    )
    previous = {s: signal.signal(s, stop) for s in handled}
    try:
        code = child.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if child.poll() is None:  # An exception while waiting: never leave it running.
            child.terminate()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    return 128 + received[0] if received else code
