"""Pickling an evaluation for its workers: cloudpickle, plus two rules for search spaces.

An :class:`~symbolic_nas.tuner.evaluation.Evaluation` is sent to each worker once
(process executors pickle it with ``main_by_reference=True``, Ray with ``False``);
see :class:`_Pickler` for the rules and :func:`dumps` for the advice given when it
cannot be pickled.
"""

from __future__ import annotations

import inspect
import io
import sys
from typing import Any

import cloudpickle

from symbolic_nas.space.symbolic import is_symbolized, symbolize

__all__ = ["dumps", "resolve_main"]


def resolve_main(qualname: str) -> Any:
    """The object named ``qualname`` in ``__main__`` (used when unpickling)."""
    value: Any = sys.modules["__main__"]
    for part in qualname.split("."):
        value = getattr(value, part)
    return value


class _Pickler(cloudpickle.Pickler):
    """cloudpickle, plus two rules for search spaces.

    * A ``sn.symbolize(SomeClass)`` factory of a published class (whose
      ``__qualname__`` names the class, not the factory) is rebuilt by calling
      ``sn.symbolize(SomeClass)`` again on loading.
    * With ``main_by_reference``, named classes and functions of ``__main__`` go
      by reference: spawned worker processes re-import the main script, so they
      find them (symbolized classes cannot be pickled by value).
    """

    def __init__(self, file: io.BytesIO, *, main_by_reference: bool) -> None:
        super().__init__(file)
        self.main_by_reference = main_by_reference

    def reducer_override(self, obj: Any) -> Any:
        if inspect.isfunction(obj) and is_symbolized(obj):
            wrapped = getattr(obj, "__wrapped__", None)
            if isinstance(wrapped, type) and not is_symbolized(wrapped):
                return symbolize, (wrapped,)
        if self.main_by_reference and (isinstance(obj, type) or callable(obj)):
            qualname = getattr(obj, "__qualname__", None)
            if (
                getattr(obj, "__module__", None) == "__main__"
                and isinstance(qualname, str)
                and "<" not in qualname
            ):
                try:
                    if resolve_main(qualname) is obj:
                        return resolve_main, (qualname,)
                except AttributeError:
                    pass
        return super().reducer_override(obj)


def dumps(value: Any, *, main_by_reference: bool) -> bytes:
    """Pickles ``value`` with cloudpickle (see :class:`_Pickler`).

    Raises:
        TypeError: With advice, if it cannot be pickled.
    """
    main = sys.modules.get("__main__")
    by_reference = main_by_reference and getattr(main, "__file__", None) is not None
    try:
        buffer = io.BytesIO()
        _Pickler(buffer, main_by_reference=by_reference).dump(value)
        return buffer.getvalue()
    except Exception as e:  # reported with advice
        raise TypeError(
            "the space and `evaluate` must be picklable to be sent to workers, but pickling "
            f"failed: {type(e).__name__}: {e}. Define classes and functions in an importable "
            "module (not an interactive session), or run with workers=1 and executor='inline'"
        ) from e
