"""One generic name -> object registry, used for algorithms, spaces and space examples.

Example:
    >>> from symbolic_nas.registry import Registry
    >>> colours = Registry("colour")
    >>> @colours.register("red")
    ... def red():
    ...     return (255, 0, 0)
    >>> colours.available(), colours.lookup("red")()
    (['red'], (255, 0, 0))
    >>> colours.lookup("blue")
    Traceback (most recent call last):
    ...
    symbolic_nas.validation.InvalidParameterError: `colour` must be one of ['red'], but got 'blue'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from symbolic_nas.validation import InvalidParameterError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind; a name is registered once (again only for the same entry).

    Args:
        kind: What an entry is (``"algorithm"``, ``"space example"``).
        parameter: The parameter that names an entry in lookups, when it is not
            ``kind`` itself; error messages then read "`parameter` must name a
            registered `kind`, one of [...], but got ..." instead of "`kind` must
            be one of [...], but got ...".

    Example:
        >>> shapes = Registry("shape example", parameter="name")
        >>> _ = shapes.register("square")(lambda side: side * side)
        >>> shapes.lookup("square")(3), "square" in shapes, shapes.available()
        (9, True, ['square'])
        >>> shapes.lookup("circle")
        Traceback (most recent call last):
        ...
        symbolic_nas.validation.InvalidParameterError: `name` must name a registered shape example, one of ['square'], but got 'circle'
    """  # noqa: E501

    def __init__(self, kind: str, *, parameter: str | None = None) -> None:
        self.kind = kind
        self.parameter = parameter
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator adding an entry under ``name``.

        Raises:
            InvalidParameterError: If ``name`` is not a non-empty str, or is taken
                by another entry.
        """
        if not isinstance(name, str) or not name:
            raise InvalidParameterError(f"`name` must be a non-empty str, but got {name!r}")

        def decorate(entry: T) -> T:
            if name in self._entries and self._entries[name] is not entry:
                raise InvalidParameterError(
                    f"`name` must be a name no other {self.kind} is registered under, "
                    f"but got {name!r}"
                )
            self._entries[name] = entry
            return entry

        return decorate

    def lookup(self, name: str) -> T:
        """The entry registered as ``name``.

        Raises:
            InvalidParameterError: If no entry has that name.
        """
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            if self.parameter is None:
                expected = f"`{self.kind}` must be one of {self.available()}"
            else:
                expected = (
                    f"`{self.parameter}` must name a registered {self.kind}, "
                    f"one of {self.available()}"
                )
            raise InvalidParameterError(f"{expected}, but got {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def available(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def copy(self) -> Registry[T]:
        """A registry with the same entries that registers apart from this one (for tests)."""
        twin: Registry[T] = Registry(self.kind, parameter=self.parameter)
        twin._entries = dict(self._entries)
        return twin
