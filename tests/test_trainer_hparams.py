"""Tests for training hyperparameters held in a space next to the model (issue 14, item 5)
and for the Trainer's check of the model's output width (item 7)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

import symbolic_nas as sn
from symbolic_nas.training import TRIAL_HPARAMS, Trainer
from symbolic_nas.validation import InvalidParameterError


def _data() -> tuple[Any, ...]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(96, 4, generator=generator)
    y = (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long()  # 4 classes
    return (x[:64], y[:64]), (x[64:80], y[64:80]), (x[80:], y[80:])


def _linear(outputs: int = 4) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return nn.Linear(4, outputs)


def test_dict_hyperparameters_override_the_trainer_for_one_call() -> None:
    trainer = Trainer(data=_data, epochs=1, batch_size=16, lr=1e-3, seed=0)
    metrics = trainer({"model": _linear(), "lr": 0.5, "optimizer": "sgd", "epochs": 2})
    assert metrics["hparams"] == {"lr": 0.5, "optimizer": "sgd", "epochs": 2}
    assert metrics["epochs"] == 2 and len(metrics["val_accuracy"]) == 2
    # The same as a trainer built with those settings.
    same = Trainer(data=_data, epochs=2, batch_size=16, lr=0.5, optimizer="sgd", seed=0)
    assert same(_linear())["train_loss"] == metrics["train_loss"]
    # The trainer itself is unchanged.
    assert trainer.epochs == 1 and "lr=0.001" in repr(trainer)
    assert "hparams" not in trainer(_linear())
    assert 0.0 <= trainer.test_accuracy({"model": _linear(), "lr": 0.1}) <= 1.0


def test_dict_hyperparameter_errors_name_the_known_keys() -> None:
    trainer = Trainer(data=_data, epochs=1)
    with pytest.raises(InvalidParameterError, match="one of epochs, batch_size") as info:
        trainer({"model": _linear(), "learning_rate": 0.1})
    assert "'learning_rate'" in str(info.value)
    assert all(name in str(info.value) for name in TRIAL_HPARAMS)
    with pytest.raises(InvalidParameterError, match="`lr` must be"):
        trainer({"model": _linear(), "lr": -1.0})
    with pytest.raises(InvalidParameterError, match="`optimizer` must be"):
        trainer({"model": _linear(), "optimizer": "lbfgs"})
    with pytest.raises(InvalidParameterError, match="'model' key"):
        trainer({"lr": 0.1})
    with pytest.raises(InvalidParameterError, match="`nesterov` must be"):
        trainer({"model": _linear(), "nesterov": True})  # with the default optimizer adam


def test_search_over_hyperparameters_with_the_builtin_trainer() -> None:
    space = {
        "model": sn.oneof([nn.Linear(4, 4), nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 4))]),
        "lr": sn.floatv(1e-3, 1e-1, scale="log"),
        "optimizer": sn.oneof(["adam", "sgd"]),
        "batch_size": sn.oneof([16, 32]),
    }
    trainer = Trainer(data=_data, epochs=1, seed=0)
    result = sn.search(
        space, trainer, algorithm="random", num_trials=4, tensorboard=False, progress=False
    )
    assert len(result.completed) == 4
    for trial in result.completed:
        hparams = trial.metrics["hparams"]
        assert set(hparams) == {"lr", "optimizer", "batch_size"}
        assert 1e-3 <= hparams["lr"] <= 1e-1 and hparams["optimizer"] in ("adam", "sgd")


def test_too_few_outputs_for_the_data_are_named_on_the_first_batch() -> None:
    trainer = Trainer(data=_data, epochs=1)
    with pytest.raises(InvalidParameterError, match=r"at least 4 classes.*shape \(64, 3\)"):
        trainer(_linear(outputs=3))
    with pytest.raises(InvalidParameterError, match="at least 4 classes"):
        trainer(nn.Sequential(nn.Linear(4, 4), nn.Flatten(0)))  # not (batch, classes)
    assert trainer(_linear(outputs=5))["accuracy"] >= 0.0  # more logits than classes is fine
