"""Errors a new user met, each made clear (issue 14, item 7)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import symbolic_nas as sn
from symbolic_nas import algorithms
from symbolic_nas.space.annotate import describe_failure
from symbolic_nas.training import Trainer
from symbolic_nas.tuner import EvaluatorChangedWarning
from symbolic_nas.validation import InvalidParameterError

SPACE = {"k": sn.oneof([1, 2, 3])}


def _search(evaluate, **kwargs):
    kwargs = {"algorithm": "random", "num_trials": 2, "progress": False, **kwargs}
    return sn.search(SPACE, evaluate, tensorboard=False, **kwargs)


def _tensor_metrics(arch):
    return {
        "reward": torch.tensor(arch["k"] / 10),
        "loss": torch.tensor(1.5),
        "curve": [torch.tensor(0.25), np.float32(0.5)],
        "nested": {"n": np.int64(3)},
    }


def test_tensor_and_numpy_scalar_metrics_are_converted() -> None:
    result = _search(_tensor_metrics)
    assert [t.status.value for t in result.trials] == ["completed", "completed"]
    metrics = result.trials[0].metrics
    assert metrics["loss"] == 1.5 and type(metrics["loss"]) is float
    assert metrics["curve"] == [0.25, 0.5] and metrics["nested"] == {"n": 3}


def test_a_tensor_metric_that_is_not_a_scalar_fails_with_advice() -> None:
    result = _search(lambda arch: {"reward": 1.0, "probs": torch.ones(3)})
    assert ".tolist()" in result.trials[0].error


@pytest.mark.parametrize(
    ("name", "kwargs", "valid"),
    [
        ("evolution", {"populaton_size": 3}, "'population_size'"),
        ("random", {"sed": 1}, "'seed'"),
        ("q_learning", {"learnin_rate": 0.1}, "'learning_rate'"),
        ("reinforce", {"learnin_rate": 0.1}, "'learning_rate'"),
    ],
)
def test_a_misspelt_algorithm_hyperparameter_lists_the_valid_names(name, kwargs, valid) -> None:
    with pytest.raises(TypeError, match="hyperparameter") as info:
        algorithms.get(name, **kwargs)
    assert valid in str(info.value) and repr(next(iter(kwargs))) in str(info.value)
    if name != "reinforce":  # the controllers' configs have their own (listing) message
        assert isinstance(info.value, InvalidParameterError)
        assert "did you mean" in str(info.value)


def _reward_k(arch):
    return arch["k"] / 10


def _reward_k_squared(arch):
    return (arch["k"] / 10) ** 2


def test_resuming_with_another_evaluator_warns_once_and_is_recorded(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    _search(_reward_k, run_dir=run_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _search(_reward_k, run_dir=run_dir, resume=True, num_trials=3)  # same: no warning
    with pytest.warns(EvaluatorChangedWarning, match="_reward_k_squared"):
        _search(_reward_k_squared, run_dir=run_dir, resume=True, num_trials=4)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["evaluator"].endswith(":_reward_k_squared")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _search(_reward_k_squared, run_dir=run_dir, resume=True, num_trials=5)


def test_resuming_with_a_trainer_of_other_settings_warns(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    space = {"model": model, "lr": sn.oneof([0.1, 0.01])}
    kwargs = {"algorithm": "random", "progress": False, "tensorboard": False, "run_dir": run_dir}
    sn.search(space, Trainer(epochs=1, max_batches_per_epoch=1), num_trials=1, **kwargs)
    with pytest.warns(EvaluatorChangedWarning, match="max_batches_per_epoch=2"):
        sn.search(
            space,
            Trainer(epochs=1, max_batches_per_epoch=2),
            num_trials=2,
            resume=True,
            **kwargs,
        )


class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.head = torch.nn.Linear(4 * 28 * 28, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x).flatten(1))


def _strided(conv: torch.nn.Conv2d) -> torch.nn.Module:
    return torch.nn.Conv2d(conv.in_channels, conv.out_channels, 3, stride=2, padding=1)


def test_a_swap_that_breaks_shapes_names_the_submodules_in_the_trial_error() -> None:
    space = sn.annotate(_Net(), {"conv": [sn.keep, _strided]})  # no example_inputs
    trainer = Trainer(epochs=1, max_batches_per_epoch=1)
    failed = sn.search(
        space,
        trainer,
        algorithm="random",
        num_trials=6,
        progress=False,
        tensorboard=False,
        max_consecutive_failures=None,
    )
    errors = [t.error for t in failed.trials if t.error]
    assert errors, "the strided candidate was never drawn"
    assert all("mat1 and mat2" in e for e in errors)
    assert all("in submodule 'head' (Linear)" in e for e in errors)
    assert all("'conv' (candidate 1, " in e for e in errors)
    assert all(t.error is None for t in failed.trials if t.tokens == [0])
    # Kept-only models and models of spaces with example_inputs are not tracked.
    model = sn.materialize(space, [0])
    with pytest.raises(RuntimeError, match="mat1 and mat2") as info:
        model(torch.zeros(1, 1, 27, 27))
    assert describe_failure(info.value) is None
