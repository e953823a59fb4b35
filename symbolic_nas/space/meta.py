"""Building a child on PyTorch's ``meta`` device: shapes without storage.

Inside :func:`on_meta`, every tensor a module's constructor creates lives on the
``meta`` device (no memory, no initialisation), and the copies the build makes of
modules written in a space (a ``sn.annotate`` base model, constant modules) get meta
tensors instead of copies of real ones (:func:`deepcopy_for_build`). A weight-sharing
pool (:mod:`symbolic_nas.space.pool`) builds children this way and then hands them its
own tensors.

Example:
    >>> import torch.nn as nn
    >>> with on_meta():
    ...     layer = deepcopy_for_build(nn.Linear(2, 3))
    >>> layer.weight.device.type, building_on_meta()
    ('meta', False)
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

__all__ = ["building_on_meta", "deepcopy_for_build", "on_meta"]

_ON_META: contextvars.ContextVar[bool] = contextvars.ContextVar("sn_meta_build", default=False)


@contextlib.contextmanager
def on_meta() -> Iterator[None]:
    """Builds in the block create their tensors on the ``meta`` device."""
    token = _ON_META.set(True)
    try:
        with torch.device("meta"):
            yield
    finally:
        _ON_META.reset(token)


def building_on_meta() -> bool:
    """Whether a build is running inside :func:`on_meta`."""
    return _ON_META.get()


def _meta(tensor: torch.Tensor) -> torch.Tensor:
    empty = torch.empty_like(tensor, device="meta")
    if isinstance(tensor, nn.Parameter):
        return nn.Parameter(empty, requires_grad=tensor.requires_grad)
    return empty


def deepcopy_for_build(value: Any) -> Any:
    """``copy.deepcopy(value)``; inside :func:`on_meta`, its tensors become meta tensors
    (of the same shapes and dtypes) instead of being copied."""
    if not _ON_META.get():
        return copy.deepcopy(value)
    if isinstance(value, torch.Tensor):
        return _meta(value)
    memo: dict[int, Any] = {}
    if isinstance(value, nn.Module):
        for module in value.modules():
            tensors = [*module._parameters.values(), *module._buffers.values()]
            tensors += [v for v in vars(module).values() if isinstance(v, torch.Tensor)]
            for tensor in tensors:
                if tensor is not None and id(tensor) not in memo:
                    memo[id(tensor)] = _meta(tensor)
    return copy.deepcopy(value, memo)
