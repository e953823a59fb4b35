"""sn.Trainer(data=fn) with tensor pairs, Datasets and DataLoaders; its reports and budget."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import symbolic_nas as sn
from symbolic_nas.validation import InvalidParameterError


def _tensors(n: int = 96, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = torch.randn(n, 4, generator=g) + nn.functional.one_hot(y, 4).float() * 2
    return x, y


def pairs():
    return _tensors(96, 0), _tensors(48, 1), _tensors(48, 2)


def datasets():
    return tuple(TensorDataset(*split) for split in pairs())


def loaders():
    train, val, test = datasets()
    return (
        DataLoader(train, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0)),
        DataLoader(val, batch_size=32),
        DataLoader(test, batch_size=32),
    )


class ListDataset(Dataset):
    """A map-style Dataset without ``targets``: labels are found by a pass."""

    def __init__(self, split):
        self.items = list(zip(*split, strict=True))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        x, y = self.items[i]
        return x, int(y)


def plain_datasets():
    return tuple(ListDataset(split) for split in pairs()[:2])


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))


@pytest.mark.parametrize("data", [pairs, datasets, loaders, plain_datasets])
def test_each_kind_of_split_trains_and_scores(data):
    trainer = sn.Trainer(data=data, epochs=3, batch_size=16, lr=0.02, seed=0)
    model = _model()
    metrics = trainer(model)
    assert len(metrics["val_accuracy"]) == 3
    assert metrics["accuracy"] > 0.6  # three separable blobs
    assert trainer.data_shape() == ((4,), 3)
    if data is not plain_datasets:
        assert 0.6 < trainer.test_accuracy(model) <= 1.0


def test_tensor_pairs_and_their_dataset_train_the_same_model():
    """The trainer's own DataLoader draws the batches in another order than the index
    slices, but both see every item once an epoch: same count of images."""
    a = sn.Trainer(data=pairs, epochs=2, batch_size=16, seed=0)(_model())
    b = sn.Trainer(data=datasets, epochs=2, batch_size=16, seed=0)(_model())
    assert a["epochs"] == b["epochs"] == 2
    assert abs(a["accuracy"] - b["accuracy"]) < 0.2


def test_the_data_function_runs_once_per_trainer():
    calls = []

    def data():
        calls.append(1)
        return datasets()

    trainer = sn.Trainer(data=data, epochs=1, batch_size=32)
    trainer(_model())
    trainer(_model())
    trainer.test_accuracy(_model())
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("returned", "match"),
    [
        ((TensorDataset(torch.zeros(0, 4), torch.zeros(0).long()),) * 2, r"must not be empty"),
        ((pairs()[0], [1, 2, 3]), r"`data` val split must be a pair \(x, y\) of tensors, a torch"),
        ((pairs()[0],), r"`data` must return \(train, val\) or \(train, val, test\)"),
    ],
)
def test_bad_splits_are_named(returned, match):
    with pytest.raises(InvalidParameterError, match=match):
        sn.Trainer(data=lambda: returned, epochs=1)(_model())


def test_report_every_validates():
    with pytest.raises(InvalidParameterError, match=r"`report_every` must be"):
        sn.Trainer(report_every=0)


def _space():
    return {"model": sn.oneof([_model_a(), _model_b()])}


def _model_a():
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))


def _model_b():
    return nn.Sequential(nn.Linear(4, 3))


def test_the_trainer_reports_every_epoch_and_every_n_batches_in_a_search(tmp_path):
    seen = []

    class Spy(sn.tuner.callbacks.Callback):
        def on_trial_report(self, trial, report, pruned, context):
            seen.append((trial.id, report.step, report.value, sorted(report.metrics)))

    trainer = sn.Trainer(data=pairs, epochs=2, batch_size=16, report_every=3, seed=0)
    space = {"width": sn.oneof([8, 16])}

    def evaluate(arch):
        torch.manual_seed(0)
        return trainer(
            nn.Sequential(nn.Linear(4, arch["width"]), nn.ReLU(), nn.Linear(arch["width"], 3))
        )

    result = sn.search(space, evaluate, algorithm="random", num_trials=1, callbacks=[Spy()])
    steps = [s for _, s, _, _ in seen]
    # 96 / 16 = 6 batches an epoch: a report after batch 3, then the epoch's own.
    assert steps == [0.5, 1, 1.5, 2]
    assert [v for _, s, v, _ in seen if s == 2] == [result.trials[0].metrics["accuracy"]]
    assert [m for _, s, _, m in seen if s == 1] == [["train_loss"]]


def test_the_trainer_trains_the_schedules_budget():
    trainer = sn.Trainer(data=pairs, epochs=5, batch_size=32, seed=0)
    space = {"width": sn.oneof([8])}

    def evaluate(arch):
        return trainer(
            nn.Sequential(nn.Linear(4, arch["width"]), nn.ReLU(), nn.Linear(arch["width"], 3))
        )

    pruner = sn.pruners.ASHAPruner(reduction_factor=3, min_resource=1, max_resource=2)
    result = sn.search(space, evaluate, algorithm="random", num_trials=1, pruner=pruner)
    assert result.trials[0].metrics["epochs"] == 2
    assert len(result.trials[0].metrics["val_accuracy"]) == 2
    plain = sn.search(space, evaluate, algorithm="random", num_trials=1, pruner="asha")
    assert plain.trials[0].metrics["epochs"] == 5  # no max_resource: no budget


def test_a_trainer_search_with_asha_prunes_children():
    trainer = sn.Trainer(data=pairs, epochs=4, batch_size=32, lr=0.01, seed=0)
    widths = [1, 2, 4, 8, 16, 32]

    def evaluate(arch):
        torch.manual_seed(arch["width"])
        w = arch["width"]
        return trainer(nn.Sequential(nn.Linear(4, w), nn.Tanh(), nn.Linear(w, 3)))

    result = sn.search(
        {"width": sn.oneof(widths)},
        evaluate,
        algorithm="random",
        num_trials=10,
        seed=1,
        pruner=sn.pruners.ASHAPruner(reduction_factor=2, min_resource=1, max_resource=4),
    )
    assert result.pruned
    for trial in result.pruned:
        assert trial.metrics["step"] < 4 and 0 <= trial.metrics["value"] <= 1
        assert "train_loss" in trial.metrics


def _width_net(arch):
    w = arch["width"]
    return nn.Sequential(nn.Linear(4, w), nn.ReLU(), nn.Linear(w, 3))


class DatasetEvaluator:
    """Picklable: the trainer (with a Dataset-returning data function) goes to workers."""

    def __init__(self):
        self.trainer = sn.Trainer(data=datasets, epochs=2, batch_size=16, seed=0)

    def __call__(self, arch):
        return self.trainer(_width_net(arch))


def test_process_workers_train_on_datasets_and_report():
    result = sn.search(
        {"width": sn.oneof([2, 4, 8, 16])},
        DatasetEvaluator(),
        algorithm="random",
        num_trials=4,
        executor="process",
        workers=2,
        seed=0,
        pruner=sn.pruners.ASHAPruner(reduction_factor=2, min_resource=1, max_resource=2),
        progress=False,
    )
    assert all(t.worker.startswith("process-") for t in result.trials)
    assert {t.status for t in result.trials} <= {"completed", "pruned"}
    for trial in result.completed:
        assert len(trial.metrics["val_accuracy"]) == 2
