"""``sn.WeightSharing``: evaluating children with shared weights (ENAS-style).

One :class:`~symbolic_nas.space.pool.ParameterPool` holds the weights of every child
of a space. Each call (one trial of ``sn.search``) builds the proposed child from the
pool (on the ``meta`` device: nothing allocated), trains the pool for
``train_steps`` minibatches through that child, then scores the child on held-out
minibatches without gradients: that accuracy is the reward. Any algorithm works
unchanged: ``reinforce`` over a pool is ENAS (Pham et al., ICML 2018), ``random`` is
random search with weight sharing (Li & Talwalkar, UAI 2019), ``evolution`` with
``train_steps=0`` on a trained pool is SPOS's search (Guo et al., ECCV 2020).

The optimizer (the trainer's kind and settings) keeps its state for the whole pool;
parameters that join the pool later join the optimizer. The training data is read
as one stream of shuffled epochs across trials. The pool, the optimizer state and the
stream's position are the evaluator's :meth:`WeightSharing.state_dict`, which
``sn.search`` saves with the run directory and loads when the run resumes.

Example:
    >>> import torch.nn as nn, symbolic_nas as sn
    >>> Seq, Conv = sn.symbolize(nn.Sequential), sn.symbolize(nn.Conv2d)
    >>> space = Seq(Conv(1, 8, sn.oneof([3, 5]), padding=2), nn.AdaptiveAvgPool2d(1),
    ...             nn.Flatten(), nn.Linear(8, 10))
    >>> shared = WeightSharing(Trainer(batch_size=32), train_steps=2, eval_batches=1)
    >>> result = sn.search(space, shared, algorithm="random", num_trials=3, seed=0)
    >>> sorted(shared.stats())  # doctest: +NORMALIZE_WHITESPACE
    ['build_ms', 'pool_modules', 'pool_parameters', 'pool_steps', 'pool_train_accuracy',
     'pool_train_loss']
    >>> shared.pool.num_modules, len(result.completed)
    (3, 3)
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from symbolic_nas.space.codec import Codec
from symbolic_nas.space.pool import BATCH_NORM, ParameterPool, shares_modules
from symbolic_nas.training.batches import is_pair
from symbolic_nas.training.device import amp_settings, prepare, resolve_device, use_channels_last
from symbolic_nas.training.inputs import check_logits
from symbolic_nas.training.trainer import NonFiniteLossError, Trainer
from symbolic_nas.validation import (
    InstanceOf,
    Interval,
    InvalidParameterError,
    Options,
    validate_params,
)

__all__ = ["WeightSharing"]


class WeightSharing:
    """An evaluator that scores children with weights shared through one pool.

    Pass it to ``sn.search`` in place of a stand-alone evaluator; nothing in the
    space or the algorithm changes. It needs one process (the pool lives in the
    driver): ``workers`` must be 1 and the executor inline.

    Args:
        trainer: The :class:`~symbolic_nas.training.trainer.Trainer` whose data,
            batch size, optimizer (kind, ``lr``, ``momentum``, ``weight_decay``),
            device, mixed precision and seed train the pool. Its ``eval_batch_size``
            sizes the held-out minibatches; ``epochs`` is not used.
        train_steps: Minibatches the pool trains with each child (0: score only,
            on a pool trained earlier).
        eval_batches: Held-out minibatches each child is scored on: always the
            first ``eval_batches`` of the validation split, so every child sees the
            same images.
        batch_norm: ``"recalibrate"``: each child's batch norm gets fresh running
            statistics, estimated on ``calibration_batches`` fixed training
            minibatches before scoring (SPOS); ``"batch_stats"``: batch norm uses the
            statistics of each batch, also when scoring (no running statistics).
        calibration_batches: Training minibatches of the recalibration.
        grad_clip: If set, the gradient norm of each step is clipped to it, and a step
            whose gradient norm is not finite is refused (``NonFiniteLossError``), so
            that one bad child cannot push the pool to infinity; None: no clipping.
        pool: A pool to train and score with (e.g. another evaluator's ``pool``,
            for a flow of searches on one pool); a new empty one by default.

    Raises:
        InvalidParameterError: If an argument is invalid (e.g. ``trainer`` is not a
            ``Trainer``, ``train_steps`` is negative).
    """

    #: The tuner hands this evaluator the tokens (it builds children from the pool).
    sn_input: ClassVar[str] = "tokens"
    #: ``sn.search`` binds it, saves its state with the run and restores it on resume.
    sn_stateful: ClassVar[bool] = True
    #: Shared weights need the one process that holds the pool.
    sn_single_process: ClassVar[bool] = True
    #: How ``symbolic-nas report`` tells this run from a stand-alone one.
    sn_evaluation: ClassVar[str] = "shared_weights"

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "trainer": [InstanceOf(Trainer, "an sn.Trainer")],
        "train_steps": [Interval(int, 0, None)],
        "eval_batches": [Interval(int, 1, None)],
        "batch_norm": [Options(BATCH_NORM)],
        "calibration_batches": [Interval(int, 1, None)],
        "grad_clip": [None, Interval(float, 0, None, closed="neither")],
        "pool": [None, InstanceOf(ParameterPool)],
    }

    def __init__(
        self,
        trainer: Trainer,
        *,
        train_steps: int = 20,
        eval_batches: int = 1,
        batch_norm: str = "recalibrate",
        calibration_batches: int = 2,
        grad_clip: float | None = None,
        pool: ParameterPool | None = None,
    ) -> None:
        validate_params(
            self._parameter_constraints,
            {
                "trainer": trainer, "train_steps": train_steps, "eval_batches": eval_batches,
                "batch_norm": batch_norm, "calibration_batches": calibration_batches,
                "grad_clip": grad_clip, "pool": pool,
            },
        )  # fmt: skip
        self.trainer = trainer
        self.train_steps = train_steps
        self.eval_batches = eval_batches
        self.batch_norm = batch_norm
        self.calibration_batches = calibration_batches
        self.grad_clip = None if grad_clip is None else float(grad_clip)
        self.device = resolve_device(trainer._device)
        self.pool = pool if pool is not None else ParameterPool(self.device)
        self._codec: Codec | None = None
        self._order: tuple[int, torch.Tensor] | None = None  # (epoch, permutation)
        self._last: dict[str, float] = {}

    def __repr__(self) -> str:
        return (
            f"WeightSharing({self.trainer!r}, train_steps={self.train_steps}, "
            f"eval_batches={self.eval_batches}, batch_norm={self.batch_norm!r}, "
            f"calibration_batches={self.calibration_batches}"
            + (f", grad_clip={self.grad_clip}" if self.grad_clip is not None else "")
            + ")"
        )

    # ------------------------------------------------------------------ binding

    def bind(self, space: Any) -> Codec:
        """Ties the evaluator (and its pool) to ``space``; ``sn.search`` calls it.

        Warns (``UserWarning``) when no two children of the space hold a common
        module: the search then works but shares nothing.

        Raises:
            ValueError: If the pool serves another space, or the trainer's data is not
                held in memory as tensor pairs (Datasets and DataLoaders are not supported).
        """
        train, val, _ = self.trainer._splits(torch.device("cpu"))
        if not (is_pair(train) and is_pair(val)):
            raise InvalidParameterError(
                "`trainer` must hold its training and validation data as in-memory (x, y) "
                "tensor pairs for WeightSharing (it draws minibatches by index), but got "
                f"{type(train).__name__} and {type(val).__name__} splits"
            )
        codec = self.pool.bind(space)
        if self.pool.device != self.device:
            self.pool.to(self.device)
            self._move_optimizer()
        if codec is not self._codec and not shares_modules(codec):
            warnings.warn(
                "the children of this space share no module (no two of them hold a module "
                "with the same path, class and parameter shapes): the search works, but "
                "shares nothing, so every child is scored after only its own train_steps",
                UserWarning,
                stacklevel=2,
            )
        self._codec = codec
        return codec

    @property
    def codec(self) -> Codec:
        if self._codec is None:
            raise RuntimeError(
                "WeightSharing must be bound to a space first: sn.search does it, or call "
                "bind(space)"
            )
        return self._codec

    # ------------------------------------------------------------------ a trial

    def __call__(self, tokens: Sequence[int]) -> dict[str, Any]:
        """Builds the child of ``tokens`` from the pool, trains the pool through it for
        ``train_steps`` minibatches and returns its metrics (``reward``: held-out
        accuracy).

        Raises:
            NonFiniteLossError: If the training loss becomes NaN or infinite (the
                optimizer step is skipped, so the pool is not poisoned).
        """
        start = time.perf_counter()
        built = self.pool.build(self.codec, tokens, batch_norm=self.batch_norm)
        build_seconds = time.perf_counter() - start
        model = _module_of(built.model)
        train, val, _ = self.trainer._splits(self.device)
        autocast_dtype, use_scaler = amp_settings(self.device, self.trainer._mixed_precision)
        channels_last = use_channels_last(self.device, train[0], self.trainer._channels_last)
        model = prepare(model, self.device, channels_last)
        was_training = model.training
        metrics: dict[str, Any] = {}
        if self.train_steps > 0:
            train_start = time.perf_counter()
            metrics.update(self._train(model, train, autocast_dtype, use_scaler, channels_last))
            metrics["train_ms"] = (time.perf_counter() - train_start) * 1e3
        if self.batch_norm == "recalibrate":
            self._recalibrate(model, train, autocast_dtype, channels_last)
        eval_start = time.perf_counter()
        accuracy = self._score(model, val, autocast_dtype, channels_last)
        model.train(was_training)
        state = self.pool.training
        state["trials"] = int(state.get("trials", 0)) + 1
        metrics = {
            "reward": accuracy,
            "accuracy": accuracy,
            **metrics,
            "new_modules": len(built.new),
            "shared_modules": len(built.shared),
            "pool_modules": self.pool.num_modules,
            "pool_parameters": self.pool.num_parameters,
            "pool_steps": int(state.get("steps", 0)),
            "build_ms": build_seconds * 1e3,
            "eval_ms": (time.perf_counter() - eval_start) * 1e3,
        }
        self._last = {
            k: float(v)
            for k, v in metrics.items()
            if k in ("train_loss", "train_accuracy", "build_ms")
        }
        return metrics

    def _next_batch(self, n: int) -> torch.Tensor:
        """The indices of the next training minibatch of the pool's data stream."""
        state = self.pool.training
        epoch, position = int(state.get("epoch", 0)), int(state.get("position", 0))
        size = min(self.trainer._batch_size, n)
        if position + size > n:
            epoch, position = epoch + 1, 0
        if self._order is None or self._order[0] != epoch:
            generator = torch.Generator().manual_seed(self.trainer.seed * 1_000_003 + epoch)
            self._order = (epoch, torch.randperm(n, generator=generator).to(self.device))
        state["epoch"], state["position"] = epoch, position + size
        return self._order[1][position : position + size]

    def _optimizer(self) -> torch.optim.Optimizer:
        """The pool's optimizer, created on first use; parameters new to the pool join it."""
        pool = self.pool
        params = pool.parameters()
        optimizer = pool.optimizer
        if optimizer is None:
            optimizer = pool.optimizer = self.trainer._optimizer_for(params)
            saved = pool.training.get("optimizer")
            if saved is not None and _count(saved) == len(params):
                optimizer.load_state_dict(saved)
            return optimizer
        group = optimizer.param_groups[0]["params"]
        known = sum(len(g["params"]) for g in optimizer.param_groups)
        group.extend(params[known:])  # the pool only grows, in this order
        return optimizer

    def _move_optimizer(self) -> None:
        if self.pool.optimizer is not None:  # rebuilt so that its state follows the device
            state = self.pool.optimizer.state_dict()
            self.pool.optimizer = None
            self.pool.training["optimizer"] = state

    def _train(
        self,
        model: nn.Module,
        train: tuple[torch.Tensor, torch.Tensor],
        autocast_dtype: torch.dtype | None,
        use_scaler: bool,
        channels_last: bool,
    ) -> dict[str, float]:
        x_train, y_train = train
        optimizer = self._optimizer()
        state = self.pool.training
        scaler = torch.amp.GradScaler(self.device.type) if use_scaler else None
        if scaler is not None and "scaler" in state:
            scaler.load_state_dict(state["scaler"])
        num_classes = self.trainer._num_classes()
        model.train()
        losses, correct, seen = [], torch.zeros((), device=self.device), 0
        for step in range(self.train_steps):
            index = self._next_batch(x_train.shape[0])
            xb, yb = x_train.index_select(0, index), y_train.index_select(0, index)
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast(
                self.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None
            ):
                logits = model(xb)
                if step == 0:
                    check_logits(model, logits, len(yb), num_classes)
                loss = F.cross_entropy(logits, yb)
            if not bool(torch.isfinite(loss)):  # before the step: never poison the pool
                raise NonFiniteLossError(
                    f"training loss is {loss.item()} at step {step + 1}/{self.train_steps} of "
                    "the shared pool"
                )
            optimizer.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                self._clip(optimizer, None, step)
                optimizer.step()
            else:
                scaler.scale(loss).backward()
                self._clip(optimizer, scaler, step)
                scaler.step(optimizer)
                scaler.update()
            losses.append(loss.detach().float())
            correct += (logits.detach().argmax(dim=1) == yb).sum()
            seen += len(yb)
        state["steps"] = int(state.get("steps", 0)) + self.train_steps
        if scaler is not None:
            state["scaler"] = scaler.state_dict()
        return {
            "train_loss": float(torch.stack(losses).mean().item()),
            "train_accuracy": correct.item() / seen,
        }

    def _clip(
        self, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None, step: int
    ) -> None:
        if self.grad_clip is None:
            return
        if scaler is not None:
            scaler.unscale_(optimizer)
        params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
        if scaler is None and not bool(torch.isfinite(norm)):  # the scaler skips such steps
            optimizer.zero_grad(set_to_none=True)
            raise NonFiniteLossError(
                f"gradient norm is {norm.item()} at step {step + 1}/{self.train_steps} of the "
                "shared pool (the step was not taken)"
            )

    @torch.no_grad()
    def _recalibrate(
        self,
        model: nn.Module,
        train: tuple[torch.Tensor, torch.Tensor],
        autocast_dtype: torch.dtype | None,
        channels_last: bool,
    ) -> None:
        """Fresh batch norm statistics from fixed training minibatches (SPOS)."""
        norms = [
            m
            for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._NormBase) and m.track_running_stats
        ]
        if not norms:
            return
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the calibration batches
        x, _ = train
        generator = torch.Generator().manual_seed(self.trainer.seed + 7919)
        size = min(self.trainer._batch_size, x.shape[0])
        order = torch.randperm(x.shape[0], generator=generator)[: size * self.calibration_batches]
        model.train()
        for chunk in order.to(self.device).split(size):
            xb = x.index_select(0, chunk)
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast(
                self.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None
            ):
                model(xb)
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum

    @torch.no_grad()
    def _score(
        self,
        model: nn.Module,
        val: tuple[torch.Tensor, torch.Tensor],
        autocast_dtype: torch.dtype | None,
        channels_last: bool,
    ) -> float:
        model.eval()
        x, y = val
        size = self.trainer._eval_batch_size
        count = min(x.shape[0], size * self.eval_batches)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        for start in range(0, count, size):
            xb = x[start : min(start + size, count)]
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast(
                self.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None
            ):
                logits = model(xb)
            correct += (logits.argmax(dim=1) == y[start : start + len(xb)]).sum()
        return correct.item() / count

    # ------------------------------------------------------------------ finalists

    def materialize(self, tokens: Sequence[int]) -> Any:
        """The child of ``tokens`` as a plain module holding copies of its shared weights
        (batch norm recalibrated when ``batch_norm="recalibrate"``), to fine-tune or
        evaluate; the pool is not changed.

        Example:
            >>> import torch.nn as nn, symbolic_nas as sn
            >>> Seq, Lin = sn.symbolize(nn.Sequential), sn.symbolize(nn.Linear)
            >>> shared = WeightSharing(Trainer(), train_steps=1)
            >>> _ = shared.bind(Seq(nn.Flatten(), Lin(784, 8), Lin(8, sn.oneof([10, 12]))))
            >>> _ = shared([0])
            >>> model = shared.materialize([0])
            >>> a, b = model[1].weight, shared.pool.build(shared.codec, [0]).model[1].weight
            >>> bool((a == b).all()), a is b
            (True, False)
        """
        model = self.pool.materialize(self.codec, tokens, batch_norm=self.batch_norm)
        module = _module_of(model)
        if self.batch_norm == "recalibrate":
            train, _, _ = self.trainer._splits(self.device)
            autocast_dtype, _ = amp_settings(self.device, self.trainer._mixed_precision)
            channels_last = use_channels_last(self.device, train[0], self.trainer._channels_last)
            was_training = module.training
            self._recalibrate(prepare(module, self.device, channels_last), train, autocast_dtype,
                              channels_last)  # fmt: skip
            module.train(was_training)
        return model

    # ------------------------------------------------------------------ persistence

    def state_dict(self) -> dict[str, Any]:
        """The pool with its optimizer state and data position (``weights_only`` loadable)."""
        if self.pool.optimizer is not None:
            self.pool.training["optimizer"] = self.pool.optimizer.state_dict()
        return self.pool.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restores a :meth:`state_dict` into the pool (moved to the trainer's device)."""
        self.pool.load_state_dict(state)
        self.pool.to(self.device)
        self._order = None

    def save(self, file: str) -> None:
        """Writes the pool and its optimizer state to ``file`` (atomically)."""
        self.state_dict()
        self.pool.save(file)

    def load(self, file: str) -> None:
        """Loads a pool saved by :meth:`save` (``weights_only=True``)."""
        self.load_state_dict(torch.load(file, map_location="cpu", weights_only=True))

    def stats(self) -> dict[str, float]:
        """The pool's size and its last trial's training loss and accuracy (for TensorBoard)."""
        stats = {
            "pool_modules": float(self.pool.num_modules),
            "pool_parameters": float(self.pool.num_parameters),
            "pool_steps": float(self.pool.training.get("steps", 0)),
        }
        names = {"train_loss": "pool_train_loss", "train_accuracy": "pool_train_accuracy"}
        stats.update({names.get(k, k): v for k, v in self._last.items() if math.isfinite(v)})
        return stats


def _count(optimizer_state: Mapping[str, Any]) -> int:
    return sum(len(group["params"]) for group in optimizer_state.get("param_groups", []))


def _module_of(child: Any) -> nn.Module:
    """The module of a built child (a dict child may hold only ``"model"``)."""
    if isinstance(child, Mapping):
        extra = sorted(str(k) for k in child if k != "model")
        if "model" not in child or extra:
            raise InvalidParameterError(
                "the children of a space searched with WeightSharing must be modules (or a dict "
                "holding only 'model'): one pool trains with one optimizer, so training "
                f"hyperparameters cannot change per child, but got a dict with keys {extra}"
            )
        child = child["model"]
    if not isinstance(child, nn.Module):
        raise TypeError(
            f"a child searched with WeightSharing must be an nn.Module, but got {type(child)}"
        )
    return child
