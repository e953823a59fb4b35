"""Ready-made search spaces (installed as ``symbolic_nas.spaces``).

Each space is ordinary PyTorch code annotated with placeholders; get one by
name with ``spaces.get(name, **kwargs)``.
"""

from symbolic_nas.spaces.registry import available, get, register

__all__ = ["available", "get", "register"]
