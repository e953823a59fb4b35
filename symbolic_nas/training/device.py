"""Where and how a :class:`~symbolic_nas.training.trainer.Trainer` runs: the device,
mixed precision and memory format it chose for a call.

Example:
    >>> resolve_device("cpu"), amp_settings(resolve_device("cpu"), "auto")
    (device(type='cpu'), (None, False))
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

__all__ = ["amp_settings", "is_device", "prepare", "resolve_device", "use_channels_last"]


def is_device(value: Any) -> bool:
    """Whether ``value`` names a torch device (a bool does not).

    Example:
        >>> is_device("cpu"), is_device(True)
        (True, False)
    """
    return not isinstance(value, bool) and torch.device(value) is not None


def resolve_device(device: str | torch.device) -> torch.device:
    """The device of ``device``: ``"auto"`` is CUDA if available, else CPU; a CUDA
    device without an index is the current one."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and resolved.index is None:
        resolved = torch.device("cuda", torch.cuda.current_device())
    return resolved


def amp_settings(
    device: torch.device, mixed_precision: bool | Literal["auto"]
) -> tuple[torch.dtype | None, bool]:
    """Returns the autocast dtype (None: off) and whether to scale gradients."""
    enabled = device.type == "cuda" if mixed_precision == "auto" else mixed_precision
    if not enabled:
        return None, False
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16, True
    return torch.bfloat16, False


def use_channels_last(
    device: torch.device, x: torch.Tensor, channels_last: bool | Literal["auto"]
) -> bool:
    """Whether inputs like ``x`` (4-D only) go channels-last on ``device``."""
    if x.dim() != 4:
        return False
    return device.type == "cuda" if channels_last == "auto" else channels_last


def prepare(model: nn.Module, device: torch.device, channels_last: bool) -> nn.Module:
    """``model`` moved to ``device`` (and to channels-last memory format if asked)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, but got {type(model).__name__}")
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return model
