"""Checks that a search with worker processes is safe to start from the main script.

``multiprocessing``'s ``spawn`` start method runs the main script again, as module
``__mp_main__``, in every new worker process. A script that calls ``sn.search`` at
its top level, outside an ``if __name__ == "__main__":`` block, would then start
the search again in every worker (and each of those would try to create the run
directory). :func:`check_main_module` catches that in the driver, before anything
is created; :func:`check_not_bootstrapping` catches it in a worker, for the cases
the driver cannot see (for instance a search started by an imported module).
"""

from __future__ import annotations

import ast
import multiprocessing
import os
import sys
from types import FrameType, ModuleType

__all__ = ["MainGuardError", "check_main_module", "check_not_bootstrapping"]

GUARD = 'if __name__ == "__main__":'
_ADVICE = (
    f"Put the code that starts the search under `{GUARD}` (as in the README's examples), "
    "or search with workers=1."
)


class MainGuardError(RuntimeError):
    """The main script cannot start worker processes safely (see the message)."""


def check_not_bootstrapping() -> None:
    """Raises :class:`MainGuardError` inside a worker that is importing the main script.

    A ``spawn`` worker runs the main script's top-level code before it starts its
    own work; a search called from there is the unguarded script's search again.

    Example:
        >>> check_not_bootstrapping()  # this process is not a worker starting up
    """
    process = multiprocessing.current_process()
    if multiprocessing.parent_process() is None and not getattr(process, "_inheriting", False):
        return
    frame = _frame_of_module_code("__mp_main__")
    if frame is None and not getattr(process, "_inheriting", False):
        return
    where = f"{frame.f_code.co_filename!r} (line {frame.f_lineno})" if frame else "the main script"
    raise MainGuardError(
        f"sn.search was called while a worker process was importing {where}: "
        "worker processes (multiprocessing's spawn) run the main script's top-level code "
        f"again, so an unguarded search starts once more in every worker. {_ADVICE}"
    )


def check_main_module() -> None:
    """Raises :class:`MainGuardError` if spawned workers would re-run this search.

    Called by the driver before a search with worker processes creates anything:
    the main script must be a file that workers can import, and a search started
    from its top level must be inside an ``if __name__ == "__main__":`` block.
    An interactive session or ``python -c`` is fine (workers do not import it).

    Example:
        >>> check_main_module()  # under doctest, the main module is not a script
    """
    main = sys.modules.get("__main__")
    if main is None or not _spawn_imports(main):
        return
    path = getattr(main, "__file__", None)
    if path is not None and not os.path.isfile(path):
        raise MainGuardError(
            f"sn.search with worker processes needs a main script that the workers can import "
            f"(multiprocessing's spawn runs it again in each), but the main module is {path!r}; "
            f"save the script to a file with the search under `{GUARD}`, or search with "
            "workers=1."
        )
    frame = _frame_of_module_code("__main__")
    if frame is None or path is None or not _same_file(frame.f_code.co_filename, path):
        return  # Not the script's own top-level code (a notebook cell, exec'd code, ...).
    lineno = frame.f_lineno
    guards = _guard_lines(path)
    if guards is None or any(first <= lineno <= last for first, last in guards):
        return
    raise MainGuardError(
        f"sn.search with worker processes was called from the top level of the main script "
        f"{path!r} (line {lineno}) outside `{GUARD}`: each worker process (multiprocessing's "
        f"spawn) runs the main script's top-level code again, and would start the search "
        f"again. {_ADVICE}"
    )


def _spawn_imports(main: ModuleType) -> bool:
    """Whether ``spawn`` makes a worker import ``main`` (as ``multiprocessing.spawn`` does)."""
    name = getattr(getattr(main, "__spec__", None), "name", None)
    if name is not None:
        return not (name == "__main__" or name.endswith(".__main__"))
    return getattr(main, "__file__", None) is not None


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _frame_of_module_code(module_name: str) -> FrameType | None:
    """The innermost frame running the top-level code of module ``module_name``."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__") == module_name:
            return frame
        frame = frame.f_back  # type: ignore[assignment]
    return None


def _guard_lines(path: str) -> list[tuple[int, int]] | None:
    """The line ranges of the bodies of ``if __name__ == "__main__":`` blocks in ``path``
    (None when the file cannot be read or parsed: then nothing can be told)."""
    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return None
    ranges = []
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_main_test(node.test):
            ranges.append((node.body[0].lineno, node.body[-1].end_lineno or node.body[-1].lineno))
    return ranges


def _is_main_test(test: ast.expr) -> bool:
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        return any(_is_main_test(value) for value in test.values)
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return False
    if not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, test.comparators[0]]
    has_name = any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
    has_main = any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides)
    return has_name and has_main
