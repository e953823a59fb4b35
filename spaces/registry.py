"""The registry of ready-made spaces: ``spaces.get(name, **kwargs)``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["available", "get", "parameter_constraints", "parameters", "register"]

_REGISTRY: dict[str, Callable[..., Any]] = {}


def register(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator adding a space factory (keyword arguments -> space) under ``name``."""

    def decorate(factory: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise ValueError(f"space name {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return decorate


def get(name: str, **kwargs: Any) -> Any:
    """The space registered as ``name``, built with ``kwargs``."""
    if name not in _REGISTRY:
        raise ValueError(f"`space` must be one of {available()}, but got {name!r}")
    return _REGISTRY[name](**kwargs)


def parameters(name: str) -> list[str]:
    """The keyword arguments the space registered as ``name`` accepts.

    Example:
        >>> from symbolic_nas import spaces
        >>> "in_channels" in spaces.registry.parameters("zoph_le_cnn")
        True
    """
    if name not in _REGISTRY:
        raise ValueError(f"`space` must be one of {available()}, but got {name!r}")
    return list(inspect.signature(_REGISTRY[name]).parameters)


def parameter_constraints(name: str) -> dict[str, list[Any]]:
    """The declared constraints of the arguments of the space registered as ``name``.

    Each factory declares them with :func:`symbolic_nas.validation.validates`.

    Example:
        >>> from symbolic_nas import spaces
        >>> str(spaces.registry.parameter_constraints("nasbench201")["C"][0])
        'an int >= 1'
    """
    if name not in _REGISTRY:
        raise ValueError(f"`space` must be one of {available()}, but got {name!r}")
    return dict(getattr(_REGISTRY[name], "parameter_constraints", {}))


def available() -> list[str]:
    """Registered space names, sorted."""
    return sorted(_REGISTRY)
