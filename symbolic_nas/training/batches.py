"""Batches of a trainer's data splits: in-memory tensor pairs, Datasets and DataLoaders.

A split of :class:`~symbolic_nas.training.Trainer`'s ``data`` is one of

* a pair ``(x, y)`` of tensors (moved to the device once, batched by index),
* a ``torch.utils.data.Dataset`` (batched by a ``DataLoader`` the trainer makes:
  ``batch_size``, shuffled by the trainer's seeded generator for training), or
* a ``torch.utils.data.DataLoader`` (used as it is: its own batch size, order and
  workers), for data that does not fit in memory.

Items of a Dataset or a DataLoader are ``(inputs, labels)``; batches are moved to the
trainer's device as they are drawn.

Example:
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> data = TensorDataset(torch.zeros(10, 2), torch.arange(10) % 3)
    >>> g = torch.Generator().manual_seed(0)
    >>> [len(y) for _, y in train_batches(data, 4, g, torch.device("cpu"), None)]
    [4, 4, 2]
    >>> num_classes(data, data)
    3
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

__all__ = [
    "Source",
    "accuracy",
    "eval_batches",
    "first_batch",
    "is_pair",
    "num_classes",
    "num_train_batches",
    "train_batches",
]

Source = Any  # tuple[Tensor, Tensor] | Dataset | DataLoader


def is_pair(split: Any) -> bool:
    """Whether a split is an in-memory ``(x, y)`` tensor pair."""
    return isinstance(split, tuple) and len(split) == 2 and isinstance(split[0], torch.Tensor)


def _to(batch: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    if not (isinstance(batch, (tuple, list)) and len(batch) >= 2):
        raise TypeError(
            "`data` Dataset and DataLoader items must be (inputs, labels), but got "
            f"{type(batch).__name__}"
        )
    x, y = batch[0], batch[1]
    if not isinstance(y, torch.Tensor):
        y = torch.as_tensor(y)
    return x.to(device, non_blocking=True), y.to(device, non_blocking=True).long()


def num_train_batches(split: Source, batch_size: int, max_batches: int | None) -> int | None:
    """Batches of one training epoch (None when a DataLoader's length is unknown)."""
    if is_pair(split):
        n = math.ceil(split[0].shape[0] / batch_size)
    else:
        try:
            n = len(split) if isinstance(split, DataLoader) else math.ceil(len(split) / batch_size)
        except TypeError:  # an IterableDataset without a length
            return max_batches
    return n if max_batches is None else min(n, max_batches)


def train_batches(
    split: Source,
    batch_size: int,
    generator: torch.Generator,
    device: torch.device,
    max_batches: int | None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One training epoch's batches on ``device``, in an order drawn from ``generator``."""
    if is_pair(split):
        x, y = split
        order = torch.randperm(x.shape[0], generator=generator).to(x.device)
        total = num_train_batches(split, batch_size, max_batches) or 0
        for b in range(total):
            index = order[b * batch_size : (b + 1) * batch_size]
            yield x.index_select(0, index), y.index_select(0, index)
        return
    loader = (
        split
        if isinstance(split, DataLoader)
        else DataLoader(split, batch_size=batch_size, shuffle=True, generator=generator)
    )
    for b, batch in enumerate(loader):
        if max_batches is not None and b >= max_batches:
            return
        yield _to(batch, device)


def eval_batches(
    split: Source, batch_size: int, device: torch.device
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """A split's batches on ``device``, in order (for accuracy)."""
    if is_pair(split):
        x, y = split
        for start in range(0, x.shape[0], batch_size):
            yield x[start : start + batch_size], y[start : start + batch_size]
        return
    loader = split if isinstance(split, DataLoader) else DataLoader(split, batch_size=batch_size)
    for batch in loader:
        yield _to(batch, device)


@torch.no_grad()
def accuracy(
    model: torch.nn.Module,
    split: Source,
    batch_size: int,
    device: torch.device,
    autocast_dtype: torch.dtype | None,
    channels_last: bool,
) -> float:
    """The model's accuracy on a split (the model is left in eval mode)."""
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=device)
    total = 0
    for xb, yb in eval_batches(split, batch_size, device):
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            logits = model(xb)
        correct += (logits.argmax(dim=1) == yb).sum()
        total += len(yb)
    return correct.item() / max(total, 1)


def first_batch(split: Source) -> tuple[torch.Tensor, torch.Tensor]:
    """A few inputs and labels of a split, on the CPU (for shapes)."""
    if is_pair(split):
        return split[0][:2].cpu(), split[1][:2].cpu()
    if isinstance(split, DataLoader):
        return _to(next(iter(split)), torch.device("cpu"))
    x, y = split[0][0], split[0][1]
    return x.unsqueeze(0), torch.as_tensor([int(y)])


def num_classes(train: Source, val: Source) -> int:
    """The classes the labels need: from tensor labels, a Dataset's ``classes`` or
    ``targets`` (torchvision datasets have them), else one pass over the labels."""
    counts = []
    for split in (train, val):
        if is_pair(split):
            counts.append(int(split[1].max()) + 1)
            continue
        dataset = split.dataset if isinstance(split, DataLoader) else split
        classes = getattr(dataset, "classes", None)
        targets = getattr(dataset, "targets", None)
        if classes is not None:
            counts.append(len(classes))
        elif targets is not None:
            counts.append(int(torch.as_tensor(targets).max()) + 1)
        elif isinstance(dataset, Dataset) and hasattr(dataset, "__len__"):
            counts.append(max(int(dataset[i][1]) for i in range(len(dataset))) + 1)
        else:
            counts.append(
                max(int(y.max()) for _, y in eval_batches(split, 1024, torch.device("cpu"))) + 1
            )
    return max(counts)
