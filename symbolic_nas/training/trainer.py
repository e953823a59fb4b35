"""The built-in classification trainer.

:class:`Trainer` trains any ``nn.Module`` mapping a batch of inputs to class logits
on in-memory tensors (by default the 5,000 MNIST digits shipped with the package)
and returns metrics with a reward, as a tuner expects from an evaluation function.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from symbolic_nas.training.batches import (
    accuracy,
    first_batch,
    is_pair,
    num_classes,
    num_train_batches,
    train_batches,
)
from symbolic_nas.training.device import (
    amp_settings,
    is_device,
    prepare,
    resolve_device,
    use_channels_last,
)
from symbolic_nas.training.inputs import (
    TRIAL_HPARAMS,
    DataFn,
    check_logits,
    load_splits,
    trial_hparams,
)
from symbolic_nas.training.reports import current_trial
from symbolic_nas.training.rewards import REWARDS as _REWARDS
from symbolic_nas.training.rewards import RewardFn
from symbolic_nas.validation import (
    Interval,
    Options,
    Satisfies,
    parameter_error,
    validate_params,
)

__all__ = ["TRIAL_HPARAMS", "NonFiniteLossError", "Trainer"]

Auto = Literal["auto"]

_OPTIMIZERS = ("adam", "sgd", "adamw")
_FLOATS = ("lr", "momentum", "weight_decay")
_HPARAMS = (
    "data", "epochs", "batch_size", "optimizer", "lr", "momentum", "nesterov", "weight_decay",
    "max_batches_per_epoch", "eval_batch_size", "reward", "device", "mixed_precision",
    "channels_last", "seed", "report_every",
)  # fmt: skip
# On CUDA, checking the loss costs a device sync: check every this many batches.
_CUDA_LOSS_CHECK_EVERY = 16


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite (the trial diverged).

    Example:
        >>> issubclass(NonFiniteLossError, FloatingPointError)
        True
    """


class Trainer:
    """Trains a classifier on in-memory tensors and reports metrics with a reward.

    Calling the trainer on a model trains it with cross-entropy for ``epochs``
    epochs and measures validation accuracy after each one. Batches are slices of
    a fresh random permutation per epoch, drawn from a ``torch.Generator`` seeded
    with ``seed`` at the start of every call, so a call's result depends only on
    the model's initial weights and the hyperparameters (on CPU it is exactly
    reproducible). Randomness inside the model (e.g. dropout) uses torch's global
    generator, which the trainer leaves alone, as it leaves all global settings.

    A space may hold training hyperparameters next to the model: when the trainer
    is called with a dict holding a ``"model"`` key (what a space such as
    ``{"model": Net(...), "lr": sn.floatv(1e-4, 1e-1, scale="log")}`` materialises
    to), its other keys, any of :data:`TRIAL_HPARAMS` (``epochs``, ``batch_size``,
    ``optimizer``, ``lr``, ``momentum``, ``nesterov``, ``weight_decay``,
    ``max_batches_per_epoch``, ``seed``), override the trainer's settings for that
    call, and are reported under the metric ``"hparams"``.

    The data is loaded on first use and cached on the instance; pickling drops the
    cache, so a trainer sent to a worker process is small and each worker loads
    its own copy once.

    Args:
        data: ``"mnist5k"`` — the digits shipped with the package, split
            4,000/500/500 by ``load_mnist5k(split_seed=0, normalize=True)``
            (standardised with the training mean and std) — or a picklable
            callable returning ``(train, val)`` or ``(train, val, test)``, each a
            pair ``(x, y)`` of a float tensor of inputs and a 1-D tensor of
            integer labels, a ``torch.utils.data.Dataset`` of ``(input, label)``
            items (batched with ``batch_size``, shuffled with ``seed``) or a
            ``DataLoader`` (used as it is); see :mod:`symbolic_nas.training.batches`.
            The callable runs once per trainer copy (once per worker).
        epochs: Training epochs.
        batch_size: Training batch size.
        optimizer: ``"adam"``, ``"sgd"`` (with ``momentum``/``nesterov``) or ``"adamw"``.
        lr: Learning rate.
        momentum: SGD momentum (ignored by the Adam variants).
        nesterov: Whether SGD uses Nesterov momentum (needs ``momentum > 0``).
        weight_decay: Weight decay (decoupled for ``"adamw"``).
        max_batches_per_epoch: If set, stop each epoch after this many batches
            (for quick runs); otherwise an epoch covers the training set once.
        eval_batch_size: Batch size for validation and test accuracy.
        reward: ``"final_accuracy"``, ``"zoph_le"`` or a callable mapping the
            per-epoch validation accuracies to the reward.
        device: ``"auto"`` (CUDA if available, else CPU) or a torch device string.
        mixed_precision: ``"auto"``: on CUDA, bf16 autocast where supported, else
            fp16 autocast with gradient scaling; off on CPU. ``True`` forces it on
            (bf16 on CPU), ``False`` off.
        channels_last: ``"auto"``: channels-last memory format for 4-D inputs on
            CUDA. ``True``/``False`` force it for 4-D inputs.
        seed: Seed of the batch order.
        report_every: Inside a search, validation accuracy is reported
            (``sn.report``) after every epoch; with ``report_every=n`` also every ``n``
            training batches (at fractional epochs). A report may stop the trial
            (:class:`~symbolic_nas.training.reports.TrialPruned`). When the search's
            pruner schedule gives the trial a budget, the trainer trains that many
            epochs instead of ``epochs``.

    Raises:
        InvalidParameterError: If a hyperparameter is invalid (a ``ValueError``).

    Example:
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
        >>> trainer = Trainer(epochs=1, max_batches_per_epoch=5, seed=0)
        >>> metrics = trainer(model)
        >>> sorted(metrics)  # doctest: +NORMALIZE_WHITESPACE
        ['accuracy', 'device', 'epochs', 'images_per_second', 'reward', 'seconds',
         'train_loss', 'val_accuracy']
        >>> 0.0 <= trainer.test_accuracy(model) <= 1.0
        True
        >>> trainer({"model": model, "lr": 0.01, "optimizer": "sgd"})["hparams"]
        {'lr': 0.01, 'optimizer': 'sgd'}
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "data": [Options(("mnist5k",)), "callable"],
        "epochs": [Interval(int, 1, None)],
        "batch_size": [Interval(int, 1, None)],
        "optimizer": [Options(_OPTIMIZERS)],
        "lr": [Interval(float, 0, None, closed="neither")],
        "momentum": [Interval(float, 0, 1, closed="left")],
        "nesterov": ["boolean"],
        "weight_decay": [Interval(float, 0, None, closed="left")],
        "max_batches_per_epoch": [None, Interval(int, 1, None)],
        "eval_batch_size": [Interval(int, 1, None)],
        "reward": [Options(tuple(_REWARDS)), "callable"],
        "device": [Options(("auto",)), Satisfies(is_device, "a torch device", invalid=["gpu7"])],
        "mixed_precision": [Options(("auto",)), "boolean"],
        "channels_last": [Options(("auto",)), "boolean"],
        "seed": [Interval(int, 0, None)],
        "report_every": [None, Interval(int, 1, None)],
    }

    def __init__(
        self,
        *,
        data: str | DataFn = "mnist5k",
        epochs: int = 3,
        batch_size: int = 128,
        optimizer: str = "adam",
        lr: float = 1e-3,
        momentum: float = 0.9,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        max_batches_per_epoch: int | None = None,
        eval_batch_size: int = 1000,
        reward: str | RewardFn = "final_accuracy",
        device: str | torch.device = "auto",
        mixed_precision: bool | Auto = "auto",
        channels_last: bool | Auto = "auto",
        seed: int = 0,
        report_every: int | None = None,
    ) -> None:
        validate_params(
            self._parameter_constraints,
            {
                "data": data, "epochs": epochs, "batch_size": batch_size,
                "optimizer": optimizer, "lr": lr, "momentum": momentum, "nesterov": nesterov,
                "weight_decay": weight_decay, "max_batches_per_epoch": max_batches_per_epoch,
                "eval_batch_size": eval_batch_size, "reward": reward, "device": device,
                "mixed_precision": mixed_precision, "channels_last": channels_last,
                "seed": seed, "report_every": report_every,
            },
        )  # fmt: skip
        if nesterov and (optimizer != "sgd" or momentum == 0):
            raise parameter_error(
                "nesterov",
                "False unless optimizer='sgd' with momentum > 0",
                nesterov,
                context=f"optimizer={optimizer!r}, momentum={momentum!r}",
            )
        if device != "auto":
            device = str(torch.device(device))

        self._data = data
        self._epochs = epochs
        self._batch_size = batch_size
        self._optimizer = optimizer
        self._lr = float(lr)
        self._momentum = float(momentum)
        self._nesterov = nesterov
        self._weight_decay = float(weight_decay)
        self._max_batches_per_epoch = max_batches_per_epoch
        self._eval_batch_size = eval_batch_size
        self._reward = reward
        self._device = device
        self._mixed_precision = mixed_precision
        self._channels_last = channels_last
        self._seed = seed
        self._report_every = report_every
        self._cache: dict[str, tuple[Any, Any, Any | None]] = {}
        self._lock = threading.Lock()

    # Pickling drops the cached data (and the lock).

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_cache"], state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._cache = {}
        self._lock = threading.Lock()

    def data_shape(self) -> tuple[tuple[int, ...], int]:
        """The shape of one input and the number of classes of the training data.

        Loads the data (once per instance) on the CPU.

        Example:
            >>> from symbolic_nas import Trainer
            >>> Trainer().data_shape()
            ((1, 28, 28), 10)
        """
        x, _ = first_batch(self._splits(torch.device("cpu"))[0])
        return tuple(x.shape[1:]), self._num_classes()

    def __repr__(self) -> str:
        return "Trainer(" + ", ".join(f"{n}={getattr(self, '_' + n)!r}" for n in _HPARAMS) + ")"

    @property
    def epochs(self) -> int:
        """Training epochs per call."""
        return self._epochs

    @property
    def seed(self) -> int:
        """Seed of the batch order."""
        return self._seed

    def __call__(self, model: nn.Module | Mapping[str, Any]) -> dict[str, Any]:
        """Trains ``model`` (moved to the trainer's device) and returns its metrics.

        Args:
            model: The module, or a dict holding it under ``"model"`` next to
                training hyperparameters (:data:`TRIAL_HPARAMS`) for this call.

        Returns:
            A dict with ``reward`` (float), ``accuracy`` (final validation
            accuracy), ``val_accuracy`` and ``train_loss`` (one float per epoch),
            ``images_per_second`` (training throughput, validation excluded),
            ``seconds`` (wall time of the call), ``epochs`` and ``device``
            (e.g. ``"cpu"`` or ``"cuda:0"``). Accuracies are fractions in [0, 1].
            Called with a dict, also ``hparams``: the hyperparameters it set.

        Raises:
            NonFiniteLossError: If the training loss becomes NaN or infinite.
            InvalidParameterError: If a dict holds an unknown key or an invalid
                value, or the model outputs fewer logits than the data has classes.
        """
        if isinstance(model, Mapping):
            trainer, module, hparams = self._for_trial(model)
            metrics = trainer._train(module)
            metrics["hparams"] = hparams
            return metrics
        return self._train(model)

    def _for_trial(self, values: Mapping[str, Any]) -> tuple[Trainer, nn.Module, dict[str, Any]]:
        """A copy of this trainer (sharing its data) with a trial's hyperparameters."""
        module, hparams = trial_hparams(values, self._parameter_constraints)
        trainer = copy.copy(self)  # shares the cached data and its lock
        for name, value in hparams.items():
            setattr(trainer, "_" + name, float(value) if name in _FLOATS else value)
        if trainer._nesterov and (trainer._optimizer != "sgd" or trainer._momentum == 0):
            raise parameter_error(
                "nesterov",
                "False unless optimizer='sgd' with momentum > 0",
                trainer._nesterov,
                context=f"optimizer={trainer._optimizer!r}, momentum={trainer._momentum!r}",
            )
        return trainer, module, hparams

    def _train(self, model: nn.Module) -> dict[str, Any]:
        start = time.perf_counter()
        device = resolve_device(self._device)
        train, val, _ = self._splits(device)
        num_classes = self._num_classes()
        autocast_dtype, use_scaler = amp_settings(device, self._mixed_precision)
        channels_last = use_channels_last(device, self._sample(train), self._channels_last)
        model = prepare(model, device, channels_last)
        optimizer = self._make_optimizer(model)
        scaler = torch.amp.GradScaler(device.type) if use_scaler else None
        generator = torch.Generator().manual_seed(self._seed)
        check_every = 1 if device.type == "cpu" else _CUDA_LOSS_CHECK_EVERY
        trial = current_trial()
        epochs = self._epochs
        if trial is not None and trial.budget is not None:
            epochs = max(1, math.ceil(trial.budget))  # The schedule's budget.
        num_batches = num_train_batches(train, self._batch_size, self._max_batches_per_epoch)

        def evaluate_now() -> float:
            return self._accuracy(model, val, device, autocast_dtype, channels_last)

        was_training = model.training
        val_accuracy: list[float] = []
        train_loss: list[float] = []
        images, train_seconds = 0, 0.0
        for epoch in range(epochs):
            model.train()
            epoch_start = time.perf_counter()
            loss_sum = torch.zeros((), device=device)
            epoch_images = 0
            pending: list[torch.Tensor] = []
            batch = -1
            for batch, (xb, yb) in enumerate(
                train_batches(
                    train, self._batch_size, generator, device, self._max_batches_per_epoch
                )
            ):
                if channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                with torch.autocast(
                    device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None
                ):
                    logits = model(xb)
                    if epoch == 0 and batch == 0:
                        check_logits(model, logits, len(yb), num_classes)
                    loss = F.cross_entropy(logits, yb)
                optimizer.zero_grad(set_to_none=True)
                if scaler is None:
                    loss.backward()
                    optimizer.step()
                else:
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                loss = loss.detach().float()
                loss_sum += loss * len(yb)
                epoch_images += len(yb)
                pending.append(loss)
                if len(pending) == check_every:
                    self._check_finite(pending, epoch, batch + 1 - len(pending), num_batches)
                    pending = []
                if (
                    trial is not None
                    and self._report_every is not None
                    and num_batches
                    and (batch + 1) % self._report_every == 0
                    and batch + 1 < num_batches
                ):
                    trial.report(epoch + (batch + 1) / num_batches, evaluate_now())
                    model.train()
            if pending:
                self._check_finite(pending, epoch, batch + 1 - len(pending), num_batches)
            train_loss.append(loss_sum.item() / max(epoch_images, 1))
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            train_seconds += time.perf_counter() - epoch_start
            images += epoch_images
            val_accuracy.append(evaluate_now())
            if trial is not None:
                trial.report(epoch + 1, val_accuracy[-1], train_loss=train_loss[-1])
        model.train(was_training)
        reward_fn = _REWARDS[self._reward] if isinstance(self._reward, str) else self._reward
        return {
            "reward": float(reward_fn(list(val_accuracy))),
            "accuracy": val_accuracy[-1],
            "val_accuracy": val_accuracy,
            "train_loss": train_loss,
            "images_per_second": images / train_seconds if train_seconds > 0 else math.inf,
            "seconds": time.perf_counter() - start,
            "epochs": epochs,
            "device": str(device),
        }

    def test_accuracy(self, model: nn.Module | Mapping[str, Any]) -> float:
        """Returns ``model``'s accuracy on the held-out test split, a fraction in [0, 1].

        ``model`` may be a dict holding the module under ``"model"`` (as in
        :meth:`__call__`; its hyperparameters do not matter here).

        Raises:
            ValueError: If the data has no test split.
        """
        if isinstance(model, Mapping):
            model = self._for_trial(model)[1]
        device = resolve_device(self._device)
        train, _, test = self._splits(device)
        if test is None:
            raise ValueError(
                f"`data` must provide a test split for test_accuracy, but got {self._data!r}"
            )
        autocast_dtype, _ = amp_settings(device, self._mixed_precision)
        channels_last = use_channels_last(device, self._sample(train), self._channels_last)
        model = prepare(model, device, channels_last)
        was_training = model.training
        accuracy = self._accuracy(model, test, device, autocast_dtype, channels_last)
        model.train(was_training)
        return accuracy

    # Helpers -----------------------------------------------------------------

    def _num_classes(self) -> int:
        """The number of classes the labels of the training and validation data need."""
        train, val, _ = self._splits(torch.device("cpu"))
        return num_classes(train, val)

    @staticmethod
    def _sample(split: Any) -> torch.Tensor:
        """Inputs like the split's (for the memory format)."""
        return split[0] if is_pair(split) else first_batch(split)[0]

    def _make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ValueError(
                f"`model` must have trainable parameters, but got {type(model).__name__}"
            )
        return self._optimizer_for(params)

    def _optimizer_for(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        """The trainer's optimizer (its kind, learning rate, momentum, decay) over ``params``."""
        if self._optimizer == "sgd":
            return torch.optim.SGD(
                params,
                lr=self._lr,
                momentum=self._momentum,
                nesterov=self._nesterov,
                weight_decay=self._weight_decay,
            )
        cls = torch.optim.Adam if self._optimizer == "adam" else torch.optim.AdamW
        return cls(params, lr=self._lr, weight_decay=self._weight_decay)

    def _check_finite(
        self,
        losses: list[torch.Tensor],
        epoch: int,
        first_batch: int,
        num_batches: int | None,
    ) -> None:
        values = torch.stack(losses)
        bad = ~torch.isfinite(values)
        if bool(bad.any()):
            position = int(bad.nonzero()[0, 0])
            raise NonFiniteLossError(
                f"training loss is {values[position].item()} at epoch {epoch + 1}/{self._epochs}, "
                f"batch {first_batch + position + 1}/{num_batches or '?'}"
            )

    def _accuracy(
        self,
        model: nn.Module,
        split: Any,
        device: torch.device,
        autocast_dtype: torch.dtype | None,
        channels_last: bool,
    ) -> float:
        return accuracy(model, split, self._eval_batch_size, device, autocast_dtype, channels_last)

    def _splits(self, device: torch.device) -> tuple[Any, Any, Any | None]:
        """The data on ``device`` (tensor pairs moved there; Datasets and DataLoaders as
        they are, their batches are moved), loaded on first use and cached."""
        key = str(device)
        with self._lock:
            if key not in self._cache:
                cpu = self._cache.get("cpu") or self._load()
                self._cache["cpu"] = cpu
                moved: list[Any] = [
                    (s[0].to(device), s[1].to(device)) if s is not None and is_pair(s) else s
                    for s in cpu
                ]
                self._cache[key] = (moved[0], moved[1], moved[2])
            return self._cache[key]

    def _load(self) -> tuple[Any, Any, Any | None]:
        return load_splits(self._data)
