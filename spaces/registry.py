"""The registry of ready-made spaces: ``spaces.get(name, **kwargs)``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from symbolic_nas.registry import Registry

__all__ = ["available", "get", "parameter_constraints", "parameters", "register"]

_REGISTRY: Registry[Callable[..., Any]] = Registry("space")


def register(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator adding a space factory (keyword arguments -> space) under ``name``."""
    return _REGISTRY.register(name)


def get(name: str, **kwargs: Any) -> Any:
    """The space registered as ``name``, built with ``kwargs``.

    Example:
        >>> import symbolic_nas as sn
        >>> from symbolic_nas import spaces
        >>> sn.encode(spaces.get("nasbench201", C=2, N=1)).space_size
        15625
        >>> spaces.get("nope")
        Traceback (most recent call last):
        ...
        symbolic_nas.validation.InvalidParameterError: `space` must be one of ['metaqnn', 'nas_rnn_cell', 'nasbench201', 'zoph_le_cnn'], but got 'nope'
    """  # noqa: E501
    return _REGISTRY.lookup(name)(**kwargs)


def parameters(name: str) -> list[str]:
    """The keyword arguments the space registered as ``name`` accepts.

    Example:
        >>> from symbolic_nas import spaces
        >>> "in_channels" in spaces.parameters("zoph_le_cnn")
        True
    """
    return list(inspect.signature(_REGISTRY.lookup(name)).parameters)


def parameter_constraints(name: str) -> dict[str, list[Any]]:
    """The declared constraints of the arguments of the space registered as ``name``.

    Each factory declares them with :func:`symbolic_nas.validation.validates`.

    Example:
        >>> from symbolic_nas import spaces
        >>> str(spaces.registry.parameter_constraints("nasbench201")["C"][0])
        'an int >= 1'
    """
    return dict(getattr(_REGISTRY.lookup(name), "parameter_constraints", {}))


def available() -> list[str]:
    """Registered space names, sorted."""
    return _REGISTRY.available()
