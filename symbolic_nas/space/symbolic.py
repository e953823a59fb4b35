"""``symbolize``: ordinary PyTorch classes and functions that also build search spaces.

A class decorated with ``@sn.symbolize`` stays the very same class object (so
``pickle``/``torch.save`` find it by name). Only its construction is
intercepted: called with concrete arguments it builds a real module exactly as
before; called with any placeholder somewhere in its arguments (also inside
lists, tuples and dicts) it returns a :class:`Call`, a PyGlove symbolic value
recording the class and its arguments, which is part of a search space.

Materialisation (:mod:`symbolic_nas.space.builder`) later calls the user's own class
with resolved arguments, so materialised models are plain ``nn.Module``
instances with ordinary ``deepcopy``/``state_dict``/pickle/``torch.compile``
semantics.

Classes that are already published elsewhere (``nn.Conv2d``, ``nn.Sequential``,
a class imported from a library) are never modified: ``sn.symbolize(nn.Conv2d)``
returns a factory function that builds plain ``nn.Conv2d`` instances.
"""

from __future__ import annotations

import functools
import inspect
import sys
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import pyglove as pg
import torch
from torch import nn

from symbolic_nas.space.placeholders import Subset

__all__ = [
    "Call",
    "SymbolicFactory",
    "TupleValue",
    "has_placeholder",
    "is_symbolized",
    "provenance",
    "symbolize",
]

_F = TypeVar("_F", bound=Callable[..., Any])
Args = tuple[Any, ...]
Kwargs = dict[str, Any]

_FN_KEY = "fn_"
_MARK = "__sn_symbolized__"


@pg.members(
    [
        (_FN_KEY, pg.typing.Any(), "The symbolized class or function."),
        (pg.typing.StrKey(), pg.typing.Any(), "Its arguments, by parameter name."),
    ]
)
class Call(pg.Object):
    """A symbolic call ``fn(**arguments)`` whose arguments hold placeholders.

    Arguments are stored under their parameter names (positional arguments are
    bound to names with the callable's signature), so decision ids read like
    ``blocks[1].kernel``.
    """

    @property
    def fn(self) -> Callable[..., Any]:
        """The class or function this call builds."""
        return self.sym_getattr(_FN_KEY)

    def arguments(self) -> dict[str, Any]:
        """The stored arguments by parameter name, in signature order."""
        return {k: v for k, v in self.sym_items() if k != _FN_KEY}

    def format(
        self, compact: bool = False, verbose: bool = True, root_indent: int = 0, **kwargs: Any
    ) -> str:
        del compact, verbose, root_indent, kwargs
        args = ", ".join(f"{k}={format_value(v)}" for k, v in self.arguments().items())
        return f"{_callable_name(self.fn)}({args})"


@pg.members([("items", pg.typing.List(pg.typing.Any()), "Tuple items.")])
class TupleValue(pg.Object):
    """A tuple that holds placeholders (PyGlove does not look inside tuples)."""

    def format(
        self, compact: bool = False, verbose: bool = True, root_indent: int = 0, **kwargs: Any
    ) -> str:
        del compact, verbose, root_indent, kwargs
        return "(" + ", ".join(format_value(v) for v in self.items) + ",)"


def format_value(value: Any) -> str:
    """A short, code-like string for a (part of a) space.

    Example:
        >>> import symbolic_nas as sn
        >>> sn.space.symbolic.format_value([sn.oneof([3, 5]), sn.floatv(0.1, 1.0)])
        '[oneof([3, 5]), floatv(0.1, 1.0)]'
    """
    if isinstance(value, pg.hyper.ManyOf):
        candidates = format_value(list(value.candidates))
        return f"manyof({value.num_choices}, {candidates})"
    if isinstance(value, pg.hyper.OneOf):
        return f"oneof({format_value(list(value.candidates))})"
    if isinstance(value, pg.hyper.Float):
        scale = "" if value.scale is None else f", scale={value.scale!r}"
        return f"floatv({value.min_value}, {value.max_value}{scale})"
    if (
        isinstance(value, pg.Symbolic)
        and hasattr(value, "format")
        and not isinstance(value, (pg.List, pg.Dict))
    ):
        return value.format(compact=True)
    if isinstance(value, (list, tuple)):
        inner = ", ".join(format_value(v) for v in value)
        return (
            f"[{inner}]"
            if isinstance(value, list)
            else f"({inner}{',' if len(value) == 1 else ''})"
        )
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {format_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, nn.Module):
        record = provenance(value)
        if record is None:
            return f"{type(value).__name__}(...)"
        parts = [format_value(a) for a in record.args]
        parts += [f"{k}={format_value(v)}" for k, v in record.kwargs.items()]
        return f"{_callable_name(record.fn)}({', '.join(parts)})"
    return repr(value)


def _callable_name(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


# --------------------------------------------------------------------------- placeholders


def has_placeholder(value: Any) -> bool:
    """Whether ``value`` holds a placeholder anywhere (lists, tuples, dicts included).

    Modules are not looked into: a built module is a constant.

    Example:
        >>> import symbolic_nas as sn
        >>> sn.space.symbolic.has_placeholder([1, (2, sn.oneof([3, 4]))])
        True
    """
    if isinstance(value, (pg.hyper.HyperValue, Call, Subset)):
        return True
    if isinstance(value, (nn.Module, torch.Tensor, str, bytes, int, float, type(None))):
        return False
    if isinstance(value, pg.Symbolic):
        return not pg.is_deterministic(value)
    if isinstance(value, (list, tuple)):
        return any(has_placeholder(v) for v in value)
    if isinstance(value, dict):
        return any(has_placeholder(v) for v in value.values())
    return False


def _symbolic_argument(value: Any, where: str) -> Any:
    """Converts an argument into a form PyGlove can search (tuples become TupleValue)."""
    if not has_placeholder(value) or isinstance(value, pg.Symbolic):
        return value
    if isinstance(value, list):
        return [_symbolic_argument(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return TupleValue(
            items=[_symbolic_argument(v, f"{where}[{i}]") for i, v in enumerate(value)]
        )
    if isinstance(value, dict):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise TypeError(
                f"dict keys inside a search space must be str, but got {bad[0]!r} in {where}"
            )
        return {k: _symbolic_argument(v, f"{where}[{k!r}]") for k, v in value.items()}
    return value


def _make_call(fn: Callable[..., Any], signature_of: Any, args: Args, kwargs: Kwargs) -> Call:
    try:
        signature = _signature(signature_of)
        bound = signature.bind(*args, **kwargs)
    except TypeError as e:
        raise TypeError(f"{_callable_name(fn)}(...) got invalid arguments: {e}") from None
    if _FN_KEY in bound.arguments:
        raise TypeError(
            f"parameter names of a symbolized callable must not be {_FN_KEY!r}, "
            f"but {_callable_name(fn)} has one"
        )
    arguments = {
        name: _symbolic_argument(list(v) if _is_var_positional(signature, name) else v, name)
        for name, v in bound.arguments.items()
    }
    return Call(**{_FN_KEY: fn}, **arguments)


def _is_var_positional(signature: inspect.Signature, name: str) -> bool:
    return signature.parameters[name].kind is inspect.Parameter.VAR_POSITIONAL


@functools.lru_cache(maxsize=1024)
def _class_signature(cls: type[Any]) -> inspect.Signature:
    init = cls.__init__
    signature = inspect.signature(init)
    params = list(signature.parameters.values())[1:]  # drop self
    return signature.replace(parameters=params)


def _signature(target: Any) -> inspect.Signature:
    """The signature used to bind arguments of a symbolized class or function."""
    if isinstance(target, type):
        try:
            return _class_signature(target)
        except (TypeError, ValueError):
            return inspect.signature(target)
    return inspect.signature(target)


def bind_arguments(fn: Callable[..., Any], arguments: dict[str, Any]) -> tuple[Args, Kwargs]:
    """Positional and keyword arguments that call ``fn`` with named ``arguments``."""
    target = getattr(fn, "__sn_target__", fn)
    signature = _signature(target)
    ordered: dict[str, Any] = {}
    for name, param in signature.parameters.items():
        if name in arguments:
            value = arguments[name]
            if param.kind is inspect.Parameter.VAR_POSITIONAL:
                value = tuple(value)
            ordered[name] = value
    bound = inspect.BoundArguments(signature, ordered)
    return bound.args, bound.kwargs


# --------------------------------------------------------------------------- provenance


@dataclass(frozen=True)
class Provenance:
    """How a module was built by a symbolized callable: ``fn(*args, **kwargs)``."""

    fn: Callable[..., Any]
    args: Args
    kwargs: Kwargs


class _ProvenanceTable:
    """Weak table from a module built by a symbolized callable to its provenance.

    It lets a constant module written inside a space (``Net([Block(1, 8, 3), ...])``)
    be rebuilt from its constructor arguments at every materialisation, so no two
    trials share a tensor. Keys are weak: the table never keeps a module alive, and
    copies or unpickled modules have no entry (they were not built by a call).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[int, tuple[weakref.ref[Any], Provenance, bool]] = {}

    def record(
        self, obj: Any, fn: Callable[..., Any], args: Args, kwargs: Kwargs, done: bool
    ) -> None:
        key = id(obj)

        def _forget(ref: weakref.ref[Any], key: int = key) -> None:
            with self._lock:
                entry = self._records.get(key)
                if entry is not None and entry[0] is ref:
                    del self._records[key]
            # `entry` (and the arguments it holds, possibly the last references to other
            # recorded modules, whose own callbacks take the lock) is released here,
            # outside the lock.
            del entry

        ref = weakref.ref(obj, _forget)
        with self._lock:
            old = self._records.get(key)
            self._records[key] = (ref, Provenance(fn, args, dict(kwargs)), done)
        del old  # released outside the lock, for the same reason

    def confirm(self, obj: Any) -> None:
        with self._lock:
            entry = self._records.get(id(obj))
            if entry is not None and entry[0]() is obj:
                self._records[id(obj)] = (entry[0], entry[1], True)
        del entry

    def get(self, obj: Any) -> Provenance | None:
        with self._lock:
            entry = self._records.get(id(obj))
        if entry is None or entry[0]() is not obj or not entry[2]:
            return None
        return entry[1]


_PROVENANCE = _ProvenanceTable()


def provenance(module: Any) -> Provenance | None:
    """How ``module`` was built, if a symbolized class or function built it.

    Example:
        >>> import torch.nn as nn, symbolic_nas as sn
        >>> Linear = sn.symbolize(nn.Linear)
        >>> sn.space.symbolic.provenance(Linear(2, 3)).args
        (2, 3)
    """
    return _PROVENANCE.get(module)


# --------------------------------------------------------------------------- symbolize


def is_symbolized(obj: Any) -> bool:
    """Whether ``obj`` is a symbolized class or function."""
    return bool(getattr(obj, _MARK, False))


def _is_published(cls: type) -> bool:
    """Whether ``cls`` is already reachable by its qualified name (not being defined now)."""
    if "<locals>" in cls.__qualname__:
        return False
    target: Any = sys.modules.get(cls.__module__)
    for part in cls.__qualname__.split("."):
        target = getattr(target, part, None)
    return target is cls


def _patch_class(cls: type[Any]) -> type[Any]:
    base_new: Callable[..., Any] = cls.__new__
    base_init: Callable[..., None] = cls.__init__

    def __new__(klass: type[Any], *args: Any, **kwargs: Any) -> Any:
        if has_placeholder(args) or has_placeholder(kwargs):
            return _make_call(klass, klass, args, kwargs)
        if base_new is object.__new__:
            obj = object.__new__(klass)
        else:
            obj = base_new(klass, *args, **kwargs)
        _PROVENANCE.record(obj, klass, args, kwargs, done=False)
        return obj

    @functools.wraps(base_init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        _PROVENANCE.confirm(self)
        base_init(self, *args, **kwargs)

    # Patching construction in place is the point; mypy types `__new__` as object's.
    cls.__new__ = __new__  # type: ignore[assignment]
    cls.__init__ = __init__
    setattr(cls, _MARK, True)
    return cls


def _factory(fn: Callable[..., Any], target: Any) -> Callable[..., Any]:
    @functools.wraps(fn)
    def symbolic_factory(*args: Any, **kwargs: Any) -> Any:
        if has_placeholder(args) or has_placeholder(kwargs):
            return _make_call(symbolic_factory, target, args, kwargs)
        out = fn(*args, **kwargs)
        if isinstance(out, nn.Module):
            _PROVENANCE.record(out, symbolic_factory, args, kwargs, done=True)
        return out

    symbolic_factory.__sn_target__ = target  # type: ignore[attr-defined]
    setattr(symbolic_factory, _MARK, True)
    return symbolic_factory


class SymbolicFactory:
    """What ``sn.symbolize(PublishedClass)`` returns: builds plain instances of the class.

    The class itself is left untouched; the factory pickles as
    ``symbolize(PublishedClass)``, so spaces and built modules that reference it can
    be sent to worker processes.
    """

    def __init__(self, cls: type[Any]):
        functools.update_wrapper(self, cls, updated=())
        self.__sn_target__ = cls
        setattr(self, _MARK, True)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if has_placeholder(args) or has_placeholder(kwargs):
            return _make_call(self, self.__sn_target__, args, kwargs)
        out = self.__sn_target__(*args, **kwargs)
        if isinstance(out, nn.Module):
            _PROVENANCE.record(out, self, args, kwargs, done=True)
        return out

    def __reduce__(self) -> tuple[Any, tuple[type]]:
        return symbolize, (self.__sn_target__,)

    def __repr__(self) -> str:
        cls = self.__sn_target__
        return f"sn.symbolize({cls.__module__}.{cls.__qualname__})"


def symbolize(obj: _F) -> _F:
    """Makes a module class or module-returning function usable inside search spaces.

    As a decorator on your own ``nn.Module`` subclass, the class is kept (only its
    construction is intercepted). On a function, a wrapper with the same name is
    returned. On a class published elsewhere (``nn.Conv2d``), a factory is
    returned and the class itself is left untouched.

    Args:
        obj: An ``nn.Module`` subclass (or any class) or a function returning modules.

    Returns:
        The class itself, or a wrapper function. Type checkers see ``obj``'s own type:
        a call whose arguments hold placeholders is typed as the object it stands
        for (see :mod:`symbolic_nas.space.placeholders`).

    Raises:
        TypeError: ``obj`` is neither a class nor a function.

    Example:
        >>> import torch.nn as nn, symbolic_nas as sn
        >>> @sn.symbolize
        ... class Block(nn.Module):
        ...     def __init__(self, width: int):
        ...         super().__init__()
        ...         self.fc = nn.Linear(width, width)
        >>> type(Block(4)).__name__          # concrete arguments: a real module
        'Block'
        >>> type(Block(sn.oneof([4, 8]))).__name__  # a placeholder: part of a space
        'Call'
    """
    # The class, its factory or the wrapper takes obj's arguments and returns what obj
    # returns, so type checkers keep obj's type.
    return cast("_F", _symbolize(obj))


def _symbolize(obj: Any) -> Any:
    if is_symbolized(obj):
        return obj
    if isinstance(obj, type):
        if issubclass(obj, pg.Symbolic):
            raise TypeError(
                "`obj` of symbolize must not be a PyGlove symbolic class, but got "
                f"{obj.__qualname__}; PyGlove classes are searchable already"
            )
        if _is_published(obj):
            return SymbolicFactory(obj)
        return _patch_class(obj)
    if isinstance(obj, nn.Module):
        raise TypeError(
            f"`obj` of symbolize must be a class or a function, but got a module instance "
            f"({type(obj).__name__}); use sn.annotate(model, rules) to search over an "
            "existing model"
        )
    if inspect.isfunction(obj) or inspect.ismethod(obj) or isinstance(obj, functools.partial):
        return _factory(obj, obj)
    raise TypeError(
        "`obj` of symbolize must be an nn.Module subclass or a function returning modules, "
        f"but got {obj!r}"
    )
