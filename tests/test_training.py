"""Tests for symbolic_nas.training: Trainer, rewards, data loading, failures."""

from __future__ import annotations

import copy
import math
import pickle
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

from symbolic_nas.training import (
    NonFiniteLossError,
    Trainer,
    final_accuracy,
    zoph_le_reward,
)
from symbolic_nas.training.data import load_mnist5k


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tiny models gain nothing from intra-op threads, and several threads per process
    slow down badly when other processes share the cores (e.g. pytest-xdist)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _cnn(init_seed: int = 0) -> nn.Module:
    """A small conv net, initialised reproducibly without touching global RNG state."""
    with torch.random.fork_rng():
        torch.manual_seed(init_seed)
        return nn.Sequential(
            nn.Conv2d(1, 8, 3, stride=2),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(16 * 6 * 6, 10),
        )


class _NanModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1)) * float("nan")


class _CountingData:
    """A picklable data callable that counts how often it is loaded."""

    def __init__(self, with_test: bool = True) -> None:
        self.calls = 0
        self.with_test = with_test

    def __call__(self) -> tuple[Any, ...]:
        self.calls += 1
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(96, 4, generator=generator)
        y = (x[:, 0] > 0).to(torch.int32)  # Learnable; integer labels of any dtype.
        splits = ((x[:64], y[:64]), (x[64:80], y[64:80]), (x[80:], y[80:]))
        return splits if self.with_test else splits[:2]


@torch.no_grad()
def _accuracy(model: nn.Module, split: tuple[torch.Tensor, torch.Tensor]) -> float:
    """The fraction of ``split`` that ``model`` (in eval mode, one batch) classifies right."""
    was_training = model.training
    model.eval()
    x, y = split
    correct = int((model(x).argmax(dim=1) == y).sum())
    model.train(was_training)
    return correct / len(y)


def _linear() -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return nn.Linear(4, 2)


def test_mnist5k_splits_are_stratified_and_deterministic() -> None:
    splits = load_mnist5k()
    sizes = {"train": 4000, "val": 500, "test": 500}
    for name, size in sizes.items():
        x, y = getattr(splits, name)
        assert x.shape == (size, 1, 28, 28) and x.dtype == torch.float32
        assert y.shape == (size,) and y.dtype == torch.int64
        assert torch.bincount(y, minlength=10).tolist() == [size // 10] * 10
        assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    again, other = load_mnist5k(), load_mnist5k(split_seed=1)
    assert torch.equal(again.val[0], splits.val[0]) and torch.equal(again.train[1], splits.train[1])
    assert not torch.equal(other.val[0], splits.val[0])
    normalized = load_mnist5k(normalize=True, val_per_class=10, test_per_class=0)
    assert len(normalized.train[1]) == 4900 and len(normalized.test[1]) == 0
    assert abs(float(normalized.train[0].mean())) < 1e-4
    assert abs(float(normalized.train[0].std()) - 1) < 1e-3
    with pytest.raises(ValueError, match=r"`split_seed` must be an int >= 0, but got -1"):
        load_mnist5k(split_seed=-1)
    with pytest.raises(ValueError, match=r"`test_per_class` must be an int in \[0, 449\]"):
        load_mnist5k(test_per_class=450)


def test_metrics_keys_and_types() -> None:
    trainer = Trainer(epochs=2, batch_size=32, max_batches_per_epoch=3, seed=0)
    model = _cnn()
    metrics = trainer(model)
    assert set(metrics) == {
        "reward",
        "accuracy",
        "val_accuracy",
        "train_loss",
        "images_per_second",
        "seconds",
        "epochs",
        "device",
    }
    assert metrics["epochs"] == 2 and metrics["device"] == "cpu"
    assert len(metrics["val_accuracy"]) == 2 and len(metrics["train_loss"]) == 2
    for key in ("reward", "accuracy", "images_per_second", "seconds"):
        assert type(metrics[key]) is float
    assert all(type(v) is float for v in metrics["val_accuracy"])
    assert all(v * 500 == round(v * 500) for v in metrics["val_accuracy"])  # k of 500 digits
    assert all(type(v) is float and v > 0 for v in metrics["train_loss"])
    assert metrics["reward"] == metrics["accuracy"] == metrics["val_accuracy"][-1]
    assert metrics["images_per_second"] > 0
    assert model.training  # The model's mode is restored.
    splits = load_mnist5k(normalize=True)  # The trainer's default data.
    assert metrics["accuracy"] == _accuracy(model, splits.val)
    assert trainer.test_accuracy(model) == _accuracy(model, splits.test)


def test_learns_mnist_well_above_chance() -> None:
    trainer = Trainer(epochs=2, batch_size=64, max_batches_per_epoch=30, lr=3e-3, seed=0)
    model = _cnn()
    metrics = trainer(model)
    assert metrics["val_accuracy"][-1] > 0.75  # Chance is 0.1; observed about 0.9.
    assert metrics["train_loss"][-1] < metrics["train_loss"][0]
    assert trainer.test_accuracy(model) > 0.75


def test_same_seed_and_init_give_same_metrics_without_global_side_effects() -> None:
    trainer = Trainer(epochs=2, batch_size=64, max_batches_per_epoch=5, seed=3)
    model = _cnn()
    rng_state, threads = torch.random.get_rng_state(), torch.get_num_threads()
    first = trainer(copy.deepcopy(model))
    second = trainer(copy.deepcopy(model))
    other_seed = Trainer(epochs=2, batch_size=64, max_batches_per_epoch=5, seed=4)(model)
    timing = ("images_per_second", "seconds")
    assert {k: v for k, v in first.items() if k not in timing} == {
        k: v for k, v in second.items() if k not in timing
    }
    assert other_seed["train_loss"] != first["train_loss"]
    assert torch.equal(torch.random.get_rng_state(), rng_state)
    assert torch.get_num_threads() == threads


def test_rewards_by_hand() -> None:
    accuracies = [0.2, 0.9, 0.3, 0.4, 0.5, 0.6, 0.55]
    assert zoph_le_reward(accuracies) == pytest.approx(0.6**3)
    assert zoph_le_reward([0.5]) == pytest.approx(0.125)
    assert final_accuracy(accuracies) == 0.55
    for reward in (zoph_le_reward, final_accuracy):
        with pytest.raises(ValueError, match=r"`val_accuracies` must be non-empty, but got \[\]"):
            reward([])


def test_zoph_le_and_callable_rewards_in_trainer() -> None:
    for reward, expected in (
        ("zoph_le", lambda accs: max(accs[-5:]) ** 3),
        (lambda accs: sum(accs) / len(accs), lambda accs: sum(accs) / len(accs)),
    ):
        trainer = Trainer(
            data=_CountingData(), epochs=3, batch_size=16, lr=0.05, reward=reward, seed=0
        )
        metrics = trainer(_linear())
        assert metrics["reward"] == pytest.approx(expected(metrics["val_accuracy"]))


def test_non_finite_loss_raises() -> None:
    trainer = Trainer(epochs=2, batch_size=32, max_batches_per_epoch=3, seed=0)
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at epoch 1/2, batch 1/3"):
        trainer(_NanModel())
    assert issubclass(NonFiniteLossError, FloatingPointError)


def test_data_loads_once_and_pickling_drops_it() -> None:
    data = _CountingData()
    trainer = Trainer(data=data, epochs=1, batch_size=16, seed=0)
    assert data.calls == 0  # Lazy.
    trainer(_linear())
    trainer(_linear())
    trainer.test_accuracy(_linear())
    assert data.calls == 1

    mnist = Trainer(epochs=1, max_batches_per_epoch=1, seed=0)
    mnist(_cnn())
    blob = pickle.dumps(mnist)
    assert len(blob) < 5_000  # The 16 MB of cached digits are not in it.
    clone = pickle.loads(blob)
    assert repr(clone) == repr(mnist)
    assert clone(_cnn())["val_accuracy"] == mnist(_cnn())["val_accuracy"]

    copied = pickle.loads(pickle.dumps(trainer))
    copied(_linear())
    assert copied._data.calls == 2  # The copy reloads once in its own "process".


def test_optimizers_and_precision_options_run() -> None:
    for options in (
        {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4},
        {"optimizer": "sgd", "lr": 0.1, "momentum": 0.0},
        {"optimizer": "adamw", "weight_decay": 0.01},
        {"mixed_precision": True, "channels_last": True},
    ):
        trainer = Trainer(epochs=1, batch_size=32, max_batches_per_epoch=3, seed=0, **options)
        metrics = trainer(_cnn())
        assert math.isfinite(metrics["train_loss"][0]), options


def test_custom_data_without_test_split() -> None:
    data = _CountingData(with_test=False)
    trainer = Trainer(data=data, epochs=1, seed=0)
    model = _linear()
    _, val = data()
    assert trainer(model)["accuracy"] == _accuracy(model, (val[0], val[1].long()))
    with pytest.raises(ValueError, match="must provide a test split"):
        trainer.test_accuracy(_linear())


@pytest.mark.parametrize(
    ("returned", "match"),
    [
        (None, r"`data` must return \(train, val\) or \(train, val, test\), but got None"),
        (((torch.zeros(2, 3), torch.zeros(2)),) * 2, r"`data` train y must be a 1-D integer"),
        (((torch.zeros(2, 3), torch.zeros(3, dtype=torch.long)),) * 2, r"2 inputs and 3 labels"),
        (((torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long)),) * 2, "floating"),
    ],
)
def test_bad_custom_data(returned: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Trainer(data=lambda: returned, epochs=1)(_linear())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"data": "cifar10"}, "`data` must be 'mnist5k' or a callable, but got 'cifar10'"),
        ({"epochs": 0}, "`epochs` must be an int >= 1, but got 0"),
        ({"epochs": 2.0}, "`epochs` must be an int >= 1, but got 2.0"),
        ({"batch_size": True}, "`batch_size` must be an int >= 1, but got True"),
        ({"optimizer": "rmsprop"}, "`optimizer` must be one of ('adam', 'sgd', 'adamw'), but got"),
        ({"lr": 0}, "`lr` must be a finite number > 0, but got 0"),
        ({"lr": float("nan")}, "`lr` must be a finite number > 0, but got nan"),
        ({"momentum": 1.0}, "`momentum` must be a number in [0, 1), but got 1.0"),
        ({"nesterov": True}, "`nesterov` must be False unless optimizer='sgd' with momentum > 0"),
        ({"weight_decay": -1e-4}, "`weight_decay` must be a finite number >= 0, but got -0.0001"),
        ({"max_batches_per_epoch": 0}, "`max_batches_per_epoch` must be None or an int >= 1"),
        ({"eval_batch_size": 0}, "`eval_batch_size` must be an int >= 1, but got 0"),
        ({"reward": "best"}, "`reward` must be one of ('final_accuracy', 'zoph_le') or a"),
        ({"device": "gpu7"}, "`device` must be 'auto' or a torch device, but got 'gpu7'"),
        ({"mixed_precision": "bf16"}, "`mixed_precision` must be 'auto' or a bool, but got 'bf16'"),
        ({"channels_last": None}, "`channels_last` must be 'auto' or a bool, but got None"),
        ({"seed": -1}, "`seed` must be an int >= 0, but got -1"),
    ],
)
def test_bad_hyperparameters(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        Trainer(**kwargs)
    assert message in str(info.value)


def test_bad_models() -> None:
    trainer = Trainer(epochs=1, max_batches_per_epoch=1)
    with pytest.raises(ValueError, match="`model` must have trainable parameters"):
        trainer(nn.Flatten())
    with pytest.raises(TypeError, match=r"`model` must be a torch.nn.Module, but got function"):
        trainer(lambda x: x)  # type: ignore[arg-type]
