"""What the ``symbolic-nas`` command loads, and the rules it loads it by.

* User code: ``module:attribute`` references are imported from the current
  directory and installed packages. ``resume`` takes its references from the run's
  config, so it first prints what it will import and refuses a module that lies
  inside the run directory (a run directory received from someone else must not
  be able to run code of its own).
* Factories: a space function or an evaluator class is called with the
  ``KEY=VALUE`` arguments given; an unknown argument (listing the valid ones) or
  an error of the factory is a usage error, not a traceback.
* Run directories, for ``report``: read without changing a byte (a torn journal
  tail is reported, not repaired: a driver may still be writing it).
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import sys
from collections.abc import Callable
from typing import Any

import click

__all__ = [
    "call_factory",
    "check_resume_imports",
    "module_files",
    "split_reference",
]


def split_reference(reference: str, what: str) -> tuple[str, str]:
    module_name, sep, attribute = reference.partition(":")
    if not sep or not module_name or not attribute:
        raise click.BadParameter(
            f"must be MODULE:ATTRIBUTE, but got {reference!r}", param_hint=what
        )
    return module_name, attribute


def module_files(module_name: str) -> list[pathlib.Path]:
    """The files and folders importing ``module_name`` would run code from, found
    without importing anything (an empty list if it cannot be found)."""
    found: list[pathlib.Path] = []
    search: Any = None
    parts = module_name.split(".")
    for depth in range(1, len(parts) + 1):
        name = ".".join(parts[:depth])
        module = sys.modules.get(name)
        spec = getattr(module, "__spec__", None) if module is not None else None
        if spec is None and depth == 1:
            try:
                spec = importlib.util.find_spec(name)
            except (ImportError, ValueError):
                spec = None
        elif spec is None:
            for finder in sys.meta_path:
                find = getattr(finder, "find_spec", None)
                spec = find(name, search) if find is not None else None
                if spec is not None:
                    break
        if spec is None:
            return []
        if spec.origin and spec.has_location:
            found.append(pathlib.Path(spec.origin))
        found += [pathlib.Path(p) for p in spec.submodule_search_locations or ()]
        search = spec.submodule_search_locations
    return found


def check_resume_imports(
    references: dict[str, str], run_dir: str, *, searched_in: str | None = None
) -> None:
    """Prints the modules ``resume`` imports; refuses one that lies in the run directory.

    Args:
        references: What each reference is for (``"space"``) -> ``module:attribute``.
        run_dir: The run directory.
        searched_in: The directory the search ran in (only named in advice).
    """
    inside = pathlib.Path(run_dir).resolve()
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for what, reference in references.items():
        if ":" not in reference:
            continue  # A registered space: nothing of the run's to import.
        module_name, _ = split_reference(reference, what)
        files = module_files(module_name)
        if not files and importlib.util.find_spec(module_name.split(".")[0]) is None:
            where = f"; the search ran in {searched_in!r}" if searched_in else ""
            raise click.ClickException(
                f"cannot find module {module_name!r} (the {what} {reference!r}) from "
                f"{os.getcwd()!r}{where}: resume from the directory the search ran in, or "
                "install the module"
            )
        for file in files:
            if file.resolve().is_relative_to(inside):
                raise click.ClickException(
                    f"refusing to import {module_name!r} (the {what} {reference!r}) from "
                    f"{str(file)!r}: it lies inside the run directory {run_dir!r}. `resume` "
                    "imports a run's code only from the current directory and installed packages"
                )
        leaf = next((f for f in reversed(files) if f.is_file()), None)  # the module's own
        where = f" from {leaf}" if leaf else ""
        click.echo(f"resume imports {module_name}{where} for the {what} {reference}", err=True)


def call_factory(
    factory: Callable[..., Any], accepted: list[str] | None, args: dict[str, Any], what: str
) -> Any:
    """``factory(**args)``; unknown arguments and errors of the factory become usage errors."""
    option = "--space-arg" if what == "SPACE" else "--evaluator-arg"
    if accepted is not None:
        unknown = sorted(set(args) - set(accepted))
        if unknown:
            raise click.BadParameter(
                f"{what.lower()} {_name(factory)} takes no argument {', '.join(unknown)}; "
                f"its arguments are: {', '.join(accepted) or 'none'}",
                param_hint=option,
            )
    try:
        return factory(**args)
    except Exception as e:  # the user's factory rejected the arguments
        from symbolic_nas.tuner.evaluation import describe_error

        given = ", ".join(f"{k}={v!r}" for k, v in args.items()) or "no arguments"
        raise click.BadParameter(
            f"{what.lower()} {_name(factory)} failed with {given}: {describe_error(e)}",
            param_hint=option,
        ) from None


def _name(value: Any) -> str:
    return str(getattr(value, "__qualname__", None) or type(value).__name__)
