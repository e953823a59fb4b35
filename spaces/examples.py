"""Example inputs of registered spaces: what the space contract suite feeds their models.

Every registered space also registers a tiny example: the positional arguments
of one forward call of its materialised models, and the output shape they must
give. ``spaces.example(name, **kwargs)`` returns it for the space that
``spaces.get(name, **kwargs)`` builds, and
:func:`symbolic_nas.testing.check_registered_space` runs the contract with it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from symbolic_nas.registry import Registry

__all__ = ["Example", "example", "register_example"]


@dataclasses.dataclass(frozen=True)
class Example:
    """One forward call of a space's models.

    Attributes:
        inputs: The positional arguments of ``model(*inputs)`` (tensors, or tuples
            of tensors such as a recurrent state).
        output_shape: The shapes the output must have: a tuple of ints for a
            tensor, nested tuples for nested outputs (``((2, 8), ((2, 8), (2, 8)))``
            for ``(h, (h, c))``), or None when any consistent shape is fine.
    """

    inputs: tuple[Any, ...]
    output_shape: Any = None


_EXAMPLES: Registry[Callable[..., Example]] = Registry("space example", parameter="name")


def register_example(name: str) -> Callable[[Callable[..., Example]], Callable[..., Example]]:
    """Decorator adding the example function of the space registered as ``name``.

    The function takes the space factory's keyword arguments (it may ignore those
    that do not change the input or output shape) and returns an :class:`Example`.
    """
    return _EXAMPLES.register(name)


def example(name: str, **kwargs: Any) -> Example:
    """The example forward call of the space ``spaces.get(name, **kwargs)``.

    Example:
        >>> from symbolic_nas import spaces
        >>> spaces.example("nasbench201", num_classes=10).output_shape
        (2, 10)
    """
    return _EXAMPLES.lookup(name)(**kwargs)
