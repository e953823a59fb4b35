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
        kind: What an entry is, as the parameter that names it (``"algorithm"``);
            error messages read "`kind` must be one of [...], but got ...".
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator adding an entry under ``name``.

        Raises:
            InvalidParameterError: If ``name`` is not a non-empty str, or is taken
                by another entry.
        """
        if not isinstance(name, str) or not name:
            raise InvalidParameterError(
                f"`name` of a {self.kind} must be a non-empty str, but got {name!r}"
            )

        def decorate(entry: T) -> T:
            if name in self._entries and self._entries[name] is not entry:
                raise InvalidParameterError(
                    f"`name` must be a {self.kind} name not registered yet, but got {name!r}"
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
            raise InvalidParameterError(
                f"`{self.kind}` must be one of {self.available()}, but got {name!r}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def available(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)
