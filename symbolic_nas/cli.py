"""The ``symbolic-nas`` command: search, resume, report and tensorboard.

Spaces and evaluators are named by ``module:attribute`` references (the current
directory is importable, as with ``python -m``), or spaces by their registered
name (``symbolic_nas.spaces.available()``)::

    symbolic-nas search examples.mnist_search:space --evaluator examples.mnist_search:Evaluate \\
        --algorithm reinforce --num-trials 40 --workers 2 --run-dir runs/mnist-cli
    symbolic-nas resume runs/mnist-cli --num-trials 80
    symbolic-nas report runs/mnist-cli --top 5
    symbolic-nas report runs/mnist-cli --format csv --output trials.csv
    symbolic-nas tensorboard runs/mnist-cli

A space reference may name a space or a function returning one (called with the
``--space-arg`` values); an evaluator reference may name a callable, or a class
(instantiated with the ``--evaluator-arg`` values). Without ``--evaluator`` the
built-in classification trainer ``symbolic_nas.training:Trainer`` is used.

``resume`` imports the space and evaluator modules named in the run's config, like
running a script: only from the current directory and installed packages, never
from a path the run directory names or from inside the run directory, and it prints
them first. ``report`` never imports user code.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from symbolic_nas.cli_loading import (
    call_factory,
    check_resume_imports,
    split_reference,
)
from symbolic_nas.cli_output import (
    for_command_line,
    format_best,
    format_summary,
    serve,
)
from symbolic_nas.cli_report import export, format_report
from symbolic_nas.validation import keyword_parameters

__all__ = ["cli", "format_report", "main"]

_DEFAULT_EVALUATOR = "symbolic_nas.training:Trainer"
_TENSORBOARD_MODULE = "tensorboard.main"  # What `symbolic-nas tensorboard` runs.


def _parse_pairs(pairs: Sequence[str], option: str) -> dict[str, Any]:
    """``KEY=VALUE`` strings to a dict; values are read as JSON when they parse."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"must be KEY=VALUE, but got {pair!r}", param_hint=option)
        try:
            values[key] = json.loads(text)
        except ValueError:
            values[key] = text
    return values


def _import_reference(reference: str, what: str) -> Any:
    module_name, attribute = split_reference(reference, what)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        value: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise click.BadParameter(f"cannot import {module_name!r}: {e}", param_hint=what) from None
    for part in attribute.split("."):
        if not hasattr(value, part):
            raise click.BadParameter(
                f"module {module_name!r} has no attribute {attribute!r}", param_hint=what
            )
        value = getattr(value, part)
    return value


def load_space(reference: str, args: dict[str, Any]) -> Any:
    """The space named by ``reference`` (``module:attr`` or a registered name)."""
    import pyglove as pg

    from symbolic_nas import spaces

    if ":" not in reference:
        if reference not in spaces.available():
            raise click.BadParameter(
                f"must be MODULE:ATTRIBUTE or one of the registered spaces "
                f"{spaces.available()}, but got {reference!r}",
                param_hint="SPACE",
            )
        accepted = spaces.registry.parameters(reference)

        def build(**kwargs: Any) -> Any:
            return spaces.get(reference, **kwargs)

        build.__qualname__ = reference
        return call_factory(build, accepted, args, "SPACE")
    value = _import_reference(reference, "SPACE")
    if callable(value) and not isinstance(value, pg.Symbolic):
        return call_factory(value, keyword_parameters(value), args, "SPACE")
    if args:
        raise click.BadParameter(
            f"--space-arg needs SPACE to name a function, but {reference!r} is a space",
            param_hint="--space-arg",
        )
    return value


def data_space_args(reference: str, evaluate: Any, given: dict[str, Any]) -> dict[str, Any]:
    """Arguments of a registered space that fit a :class:`Trainer`'s data.

    ``in_channels``, ``num_classes`` and ``image_size`` (square images), where the
    space accepts them and they were not given; nothing for other evaluators or
    ``module:attr`` spaces.
    """
    from symbolic_nas import spaces
    from symbolic_nas.training import Trainer

    if ":" in reference or reference not in spaces.available():
        return {}
    if not isinstance(evaluate, Trainer):
        return {}
    accepted = spaces.parameters(reference)
    wanted = [k for k in ("in_channels", "image_size", "num_classes") if k in accepted]
    wanted = [k for k in wanted if k not in given]
    if not wanted:
        return {}
    shape, num_classes = evaluate.data_shape()
    values: dict[str, Any] = {"num_classes": num_classes}
    if len(shape) == 3:
        values["in_channels"] = shape[0]
        if shape[1] == shape[2]:
            values["image_size"] = shape[1]
    return {k: values[k] for k in wanted if k in values}


def load_evaluator(reference: str, args: dict[str, Any]) -> Any:
    """The evaluator named by ``reference`` (a class is instantiated with ``args``)."""
    value = _import_reference(reference, "--evaluator")
    if isinstance(value, type):
        return call_factory(value, keyword_parameters(value), args, "EVALUATOR")
    if args:
        raise click.BadParameter(
            f"--evaluator-arg needs --evaluator to name a class, but {reference!r} is not one",
            param_hint="--evaluator-arg",
        )
    if not callable(value):
        raise click.BadParameter(f"{reference!r} is not callable", param_hint="--evaluator")
    return value


def _run(kwargs: dict[str, Any], cli_config: dict[str, Any], top: int) -> None:
    from symbolic_nas import algorithms
    from symbolic_nas.api import search
    from symbolic_nas.storage.rundir import ResumeError
    from symbolic_nas.tuner.executors.local import WorkerError
    from symbolic_nas.tuner.loop import TooManyFailuresError

    evaluate = load_evaluator(cli_config["evaluator"], cli_config["evaluator_args"])
    inferred = data_space_args(cli_config["space"], evaluate, cli_config["space_args"])
    if inferred:
        shown = ", ".join(f"{k}={v}" for k, v in inferred.items())
        click.echo(f"space arguments from the trainer's data: {shown}", err=True)
        cli_config["space_args"] = {**cli_config["space_args"], **inferred}
    space = load_space(cli_config["space"], cli_config["space_args"])
    if "seed" in cli_config["algorithm_args"]:
        raise click.BadParameter("give the seed with --seed", param_hint="--algorithm-arg")
    try:
        algorithm = algorithms.get(
            cli_config["algorithm"], seed=kwargs["seed"], **cli_config["algorithm_args"]
        )
    except (TypeError, ValueError) as e:
        raise click.BadParameter(str(e), param_hint="--algorithm/--algorithm-arg") from None
    try:
        result = search(
            space, evaluate, algorithm=algorithm, metadata={"cli": cli_config}, **kwargs
        )
    except (ResumeError, TooManyFailuresError, WorkerError, ValueError, TypeError) as e:
        raise click.ClickException(for_command_line(str(e))) from None
    if kwargs["run_dir"] is not None:
        click.echo(format_report(kwargs["run_dir"], top=top))
        click.echo("")
        click.echo(format_best(result))
    else:
        click.echo(format_summary(result))
    if not result.completed:
        raise click.ClickException(
            f"no trial completed ({len(result.failed)} failed; their errors are listed above)"
        )


_COMMON = [
    click.option("--workers", default=None, help="Parallel trials (an int or 'auto')."),
    click.option(
        "--executor",
        type=click.Choice(["auto", "inline", "process", "ray"]),
        default=None,
        help="Where trials run (default: inline for 1 worker, else processes).",
    ),
    click.option(
        "--ray-address",
        default=None,
        metavar="HOST:PORT",
        help="Run trials on the Ray cluster whose head is there (implies --executor ray; "
        "see the README's Distributed section for token authentication).",
    ),
    click.option("--trial-timeout", type=float, default=None, help="Seconds per trial."),
    click.option(
        "--max-consecutive-failures",
        type=int,
        default=None,
        help="Failed trials in a row that stop the run (default: 10).",
    ),
    click.option(
        "--tensorboard/--no-tensorboard", default=True, help="Log to RUN_DIR/tensorboard."
    ),
    click.option("--progress/--no-progress", default=None, help="Show a progress bar."),
    click.option(
        "--top", type=click.IntRange(min=0), default=5, show_default=True, help="Rows of the table."
    ),
]


def _common(fn: Any) -> Any:
    for option in reversed(_COMMON):
        fn = option(fn)
    return fn


def _workers(value: str | None) -> int | str:
    if value is None:
        return 1
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(
            f"must be an int or 'auto', but got {value!r}", param_hint="--workers"
        ) from None


#: The options `resume` keeps from the search unless given again, with their defaults.
_KEPT: dict[str, Any] = {
    "workers": None,
    "executor": None,
    "trial_timeout": None,
    "max_consecutive_failures": 10,
}


def _kept_options(given: dict[str, Any], saved: dict[str, Any]) -> dict[str, Any]:
    """The ``_KEPT`` options: as ``given`` on the command line, else ``saved``, else default."""
    return {
        name: given[name] if given[name] is not None else saved.get(name, default)
        for name, default in _KEPT.items()
    }


def _execute(
    cli_config: dict[str, Any], options: dict[str, Any], common: dict[str, Any], **run: Any
) -> None:
    """Runs ``sn.search`` with the ``run`` arguments, the kept ``options`` and the other
    common options (``--tensorboard``, ``--progress``, ``--top``)."""
    executor = options["executor"] or "auto"
    if common["ray_address"] is not None:
        if executor not in ("auto", "ray"):
            raise click.BadParameter(
                f"needs --executor ray, but got --executor {executor}", param_hint="--ray-address"
            )
        executor = "ray"
        _connect_ray(common["ray_address"])
    kwargs = {
        **run,
        "workers": _workers(options["workers"]),
        "executor": executor,
        "trial_timeout": options["trial_timeout"],
        "max_consecutive_failures": options["max_consecutive_failures"],
        "tensorboard": common["tensorboard"],
        "progress": common["progress"],
    }
    _run(kwargs, cli_config, common["top"])


def _connect_ray(address: str) -> None:
    """Connects to the Ray cluster at ``address``, or stops with the reason."""
    from symbolic_nas.tuner.executors.ray_actors import connect

    try:
        connect(address)
    except (ImportError, ConnectionError) as e:
        raise click.ClickException(str(e)) from None
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--ray-address") from None
    except Exception as e:  # ConnectionError, Ray's AuthenticationError and the like
        raise click.ClickException(f"cannot connect to Ray at {address!r}: {e}") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Neural architecture search over ordinary PyTorch code."""


@cli.command()
@click.argument("space")
@click.option("--evaluator", default=_DEFAULT_EVALUATOR, show_default=True, help="MODULE:ATTR.")
@click.option("--space-arg", multiple=True, help="KEY=VALUE for a space function (JSON values).")
@click.option("--evaluator-arg", multiple=True, help="KEY=VALUE for an evaluator class.")
@click.option("--algorithm", default="reinforce", show_default=True, help="Registered name.")
@click.option("--algorithm-arg", multiple=True, help="KEY=VALUE hyperparameter.")
@click.option("--num-trials", type=int, default=100, show_default=True)
@click.option("--run-dir", type=click.Path(file_okay=False), default=None, help="Run directory.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--failure-reward", type=float, default=None, help="Penalty for failed trials.")
@click.option("--resume", is_flag=True, help="Continue the run in --run-dir.")
@_common
def search(
    space: str,
    evaluator: str,
    space_arg: tuple[str, ...],
    evaluator_arg: tuple[str, ...],
    algorithm: str,
    algorithm_arg: tuple[str, ...],
    num_trials: int,
    run_dir: str | None,
    seed: int,
    failure_reward: float | None,
    resume: bool,
    **common: Any,
) -> None:
    """Search SPACE (MODULE:ATTR or a registered space name)."""
    options = _kept_options(common, {})
    cli_config = {
        "space": space,
        "space_args": _parse_pairs(space_arg, "--space-arg"),
        "evaluator": evaluator,
        "evaluator_args": _parse_pairs(evaluator_arg, "--evaluator-arg"),
        "algorithm": algorithm,
        "algorithm_args": _parse_pairs(algorithm_arg, "--algorithm-arg"),
        "cwd": os.getcwd(),
        "options": options,  # what `resume` keeps unless told otherwise
    }
    _execute(
        cli_config,
        options,
        common,
        num_trials=num_trials,
        run_dir=run_dir,
        resume=resume,
        seed=seed,
        failure_reward=failure_reward,
    )


@cli.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--num-trials", type=int, default=None, help="New total number of trials.")
@_common
def resume(run_dir: str, num_trials: int | None, **common: Any) -> None:
    """Continue the run in RUN_DIR (started with `symbolic-nas search`).

    Workers, executor, time limit and failure limit are the search's unless given.
    """
    from symbolic_nas.storage.reader import read_run
    from symbolic_nas.storage.rundir import ResumeError

    try:
        run = read_run(run_dir)  # Read only: it may be in use.
    except ResumeError as e:
        raise click.ClickException(str(e)) from None
    config = run.config
    finished = len(run.history.finished)
    cli_config = config.get("metadata", {}).get("cli")
    if not cli_config:
        raise click.ClickException(
            f"{run_dir!r} was not started by `symbolic-nas search`, so its space and evaluator "
            "are unknown here; continue it with sn.search(..., resume=True)"
        )
    if num_trials is not None and num_trials < finished:
        raise click.BadParameter(
            f"must be at least the {finished} trials the run already finished, but got "
            f"{num_trials} (the run is left as it is)",
            param_hint="--num-trials",
        )
    # The run's own code, imported like a script's: from here and installed packages only.
    check_resume_imports(
        {"space": cli_config["space"], "evaluator": cli_config["evaluator"]},
        run_dir,
        searched_in=cli_config.get("cwd"),
    )
    _execute(
        cli_config,
        _kept_options(common, cli_config.get("options", {})),
        common,
        num_trials=num_trials if num_trials is not None else config["num_trials"],
        run_dir=run_dir,
        resume=True,
        seed=config["seed"],
        failure_reward=config["failure_reward"],
    )


@cli.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--top",
    type=click.IntRange(min=0),
    default=None,
    help="Rows: the best N trials (default: 10 in the text report, every trial in CSV/JSON).",
)
@click.option(
    "--columns",
    default=None,
    help="Comma-separated columns: id, status, reward, a decision or metric name, error, "
    "attempts, started, duration, worker, tokens, rank, choices.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "csv", "json"]),
    default="text",
    show_default=True,
    help="A text report, or one CSV row / JSON object per trial.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write to this file instead of the standard output.",
)
def report(
    run_dir: str, top: int | None, columns: str | None, output_format: str, output: str | None
) -> None:
    """Print the top trials and the failures of RUN_DIR (read-only: it may be running).

    Choices are shown by their labels; the text table has every scalar metric
    (``--columns`` picks others). ``--format csv|json`` writes every finished
    trial (the best ``--top`` ones when given) with every column.
    """
    from symbolic_nas.storage.rundir import ResumeError

    chosen = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    try:
        if output_format == "text":
            text = format_report(run_dir, top=10 if top is None else top, columns=chosen) + "\n"
        else:
            text = export(run_dir, output_format, top=top, columns=chosen)
    except ResumeError as e:
        raise click.ClickException(str(e)) from None
    if output is None:
        click.echo(text, nl=False)
    else:
        with open(output, "w", encoding="utf-8", newline="") as f:
            f.write(text)


@cli.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--port", type=int, default=6006, show_default=True)
def tensorboard(run_dir: str, port: int) -> None:
    """Serve RUN_DIR/tensorboard with TensorBoard on 127.0.0.1."""
    from symbolic_nas.storage.rundir import TENSORBOARD

    logdir = os.path.join(run_dir, TENSORBOARD)
    if not os.path.isdir(logdir):
        raise click.ClickException(f"{logdir!r} does not exist (was TensorBoard logging off?)")
    command = [
        sys.executable, "-m", _TENSORBOARD_MODULE, "--logdir", logdir,
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    click.echo(f"TensorBoard at http://127.0.0.1:{port}/ (Ctrl-C to stop)")
    sys.exit(serve(command))


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``symbolic-nas`` console script."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="symbolic-nas")


if __name__ == "__main__":
    main()
