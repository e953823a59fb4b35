"""What a :class:`~symbolic_nas.training.trainer.Trainer` is given, checked.

The splits a ``data`` callable returns (:func:`load_splits`), the logits a model
outputs on its first batch (:func:`check_logits`) and the training hyperparameters a
trial sets next to its model (:func:`trial_hparams`, the keys of
:data:`TRIAL_HPARAMS`).

Example:
    >>> import torch
    >>> train = (torch.zeros(4, 2), torch.tensor([0, 1, 0, 1]))
    >>> [len(s[1]) for s in load_splits(lambda: (train, train))[:2]]
    [4, 4]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from symbolic_nas.training.data.mnist import load_mnist5k
from symbolic_nas.validation import InvalidParameterError, brief, validate_params

__all__ = [
    "TRIAL_HPARAMS",
    "DataFn",
    "Split",
    "SplitSource",
    "check_logits",
    "load_splits",
    "trial_hparams",
]

Split = tuple[torch.Tensor, torch.Tensor]
#: What one split of ``data`` may be: a tensor pair, a ``Dataset`` or a ``DataLoader``.
SplitSource = Split | Dataset[Any] | DataLoader[Any]
DataFn = Callable[
    [], tuple[SplitSource, SplitSource] | tuple[SplitSource, SplitSource, SplitSource]
]

#: The keys a space may put next to ``"model"`` to set a trial's training hyperparameters.
TRIAL_HPARAMS = (
    "epochs", "batch_size", "optimizer", "lr", "momentum", "nesterov", "weight_decay",
    "max_batches_per_epoch", "seed",
)  # fmt: skip


def trial_hparams(
    values: Mapping[str, Any], constraints: Mapping[str, Sequence[Any]]
) -> tuple[nn.Module, dict[str, Any]]:
    """A trial's model and its hyperparameters (plain values), checked.

    Args:
        values: The dict a space materialised to: ``"model"`` and keys of
            :data:`TRIAL_HPARAMS`.
        constraints: The trainer's declaration, which every hyperparameter must satisfy.

    Raises:
        InvalidParameterError: If ``"model"`` is missing, a key is not a training
            hyperparameter or a value breaks its declaration.

    Example:
        >>> from symbolic_nas.validation import Interval
        >>> trial_hparams({"model": None, "epochs": 2}, {"epochs": [Interval(int, 1, None)]})
        (None, {'epochs': 2})
    """
    if "model" not in values:
        raise InvalidParameterError(
            "`model` must be an nn.Module or a dict with a 'model' key, but got a dict "
            f"with keys {sorted(map(str, values))}"
        )
    unknown = sorted(str(k) for k in values if k != "model" and k not in TRIAL_HPARAMS)
    if unknown:
        raise InvalidParameterError(
            f"the keys next to 'model' must be training hyperparameters of sn.Trainer, one "
            f"of {', '.join(TRIAL_HPARAMS)}, but got {', '.join(map(repr, unknown))}"
        )
    hparams = {k: _plain(v) for k, v in values.items() if k != "model"}
    validate_params({k: constraints[k] for k in hparams}, hparams)
    return values["model"], hparams


def load_splits(data: str | DataFn) -> tuple[Any, Any, Any | None]:
    """The ``(train, val, test)`` splits of a trainer's ``data`` (``test`` may be None).

    Each is a tensor pair, a ``Dataset`` or a ``DataLoader`` (see
    :mod:`symbolic_nas.training.batches`).

    Raises:
        InvalidParameterError: If the callable returns anything but two or three
            splits: ``(x, y)`` pairs of float inputs and as many 1-D integer labels,
            Datasets or DataLoaders.
    """
    if isinstance(data, str):
        splits = load_mnist5k(split_seed=0, normalize=True)
        return splits.train, splits.val, splits.test
    result = data()
    if not isinstance(result, (tuple, list)) or len(result) not in (2, 3):
        raise InvalidParameterError(
            f"`data` must return (train, val) or (train, val, test), but got {brief(result)}"
        )
    names = ("train", "val", "test")
    checked = [_check_split(names[i], s) for i, s in enumerate(result)]
    return checked[0], checked[1], checked[2] if len(checked) == 3 else None


def _plain(value: Any) -> Any:
    """A hyperparameter as a plain Python value (numpy and 0-d torch scalars unwrapped)."""
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:
        return item()
    return value


def check_logits(model: nn.Module, logits: Any, batch: int, num_classes: int) -> None:
    """The model's output on the first batch must be ``(batch, >= num_classes)`` logits."""
    shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else None
    if shape is None or len(shape) != 2 or shape[0] != batch or shape[1] < num_classes:
        got = f"shape {shape}" if shape is not None else brief(logits)
        raise InvalidParameterError(
            f"`model` must output a (batch, classes) tensor of logits with at least "
            f"{num_classes} classes (the data's labels go up to {num_classes - 1}), but "
            f"{type(model).__name__} output {got} for a batch of {batch} inputs"
        )


def _check_split(name: str, split: Any) -> Any:
    """One split returned by the ``data`` callable, checked (a bad split is a bad ``data``):
    a tensor pair (returned as a tuple with ``long`` labels), a ``Dataset`` or a
    ``DataLoader`` (returned as they are)."""
    if isinstance(split, (Dataset, DataLoader)):
        try:
            empty = len(split) == 0  # type: ignore[arg-type]
        except TypeError:  # an IterableDataset without a length
            empty = False
        if empty:
            raise InvalidParameterError(
                f"`data` {name} split must not be empty, but got an empty {type(split).__name__}"
            )
        return split
    if not (isinstance(split, (tuple, list)) and len(split) == 2):
        raise InvalidParameterError(
            f"`data` {name} split must be a pair (x, y) of tensors, a torch Dataset or a "
            f"DataLoader, but got {brief(split)}"
        )
    x, y = split
    if not (isinstance(x, torch.Tensor) and x.is_floating_point() and x.dim() >= 1):
        raise InvalidParameterError(
            f"`data` {name} x must be a floating-point tensor, but got {brief(x)}"
        )
    if not (isinstance(y, torch.Tensor) and y.dim() == 1 and not y.is_floating_point()):
        raise InvalidParameterError(
            f"`data` {name} y must be a 1-D integer tensor, but got {brief(y)}"
        )
    if len(x) != len(y) or len(y) == 0:
        raise InvalidParameterError(
            f"`data` {name} split must have as many (> 0) labels as inputs, "
            f"but got {len(x)} inputs and {len(y)} labels"
        )
    return x, y.long()
