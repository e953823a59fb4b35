"""Built-in measurements of a child: parameters, FLOPs, CPU and GPU latency.

The functions measure a module on an input shape; :func:`measured` wraps an
evaluator so that every trial measures its freshly built model in the worker,
right before training, and adds the measurements to the metrics the evaluator
returns (the objectives of ``sn.search(..., objectives=...)`` may then name
them). Latency is the median of ``repeats`` timed forward passes after
``warmup`` untimed ones, in eval mode without gradients; on the CPU with one
torch thread (a worker's other threads would make it noisy), on the GPU with
CUDA events.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

__all__ = [
    "MEASUREMENTS",
    "Measured",
    "count_flops",
    "count_parameters",
    "cpu_latency_ms",
    "gpu_latency_ms",
    "measured",
]

#: The metric names :func:`measured` can add.
MEASUREMENTS = ("params", "flops", "cpu_latency_ms", "gpu_latency_ms")


def _example(input_shape: Sequence[int], batch_size: int, device: Any = "cpu") -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)  # never the trial's generator
    return torch.randn((batch_size, *input_shape), generator=generator).to(device)


def count_parameters(model: nn.Module) -> int:
    """The number of parameters (trainable or not; shared ones once).

    Example:
        >>> count_parameters(nn.Linear(3, 2))
        8
    """
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_shape: Sequence[int], *, batch_size: int = 1) -> int:
    """FLOPs of one forward pass (``torch.utils.flop_counter``: a multiply-add is 2).

    Example:
        >>> count_flops(nn.Linear(3, 2), (3,))
        12
    """
    from torch.utils.flop_counter import FlopCounterMode

    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x = _example(input_shape, batch_size, device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def _timed(model: nn.Module, x: torch.Tensor, warmup: int, repeats: int, run: Any) -> float:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for _ in range(warmup):
                model(x)
            return float(statistics.median(run() for _ in range(repeats)))
    finally:
        model.train(was_training)


def cpu_latency_ms(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    batch_size: int = 1,
    warmup: int = 3,
    repeats: int = 10,
) -> float:
    """Median CPU latency of a forward pass in milliseconds, with one torch thread.

    A model on another device is measured on a CPU copy.

    Example:
        >>> cpu_latency_ms(nn.Linear(3, 2), (3,), repeats=3) > 0
        True
    """
    if any(p.device.type != "cpu" for p in model.parameters()):
        model = copy.deepcopy(model).cpu()
    x = _example(input_shape, batch_size)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)

    def run() -> float:
        start = time.perf_counter()
        model(x)
        return (time.perf_counter() - start) * 1e3

    try:
        return _timed(model, x, warmup, repeats, run)
    finally:
        torch.set_num_threads(threads)


def gpu_latency_ms(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    batch_size: int = 1,
    warmup: int = 10,
    repeats: int = 30,
    device: str | torch.device | None = None,
) -> float | None:
    """Median GPU latency of a forward pass in milliseconds (CUDA events), or None
    without CUDA. The model is measured on a copy on ``device`` (default: the current one).

    Example:
        >>> gpu_latency_ms(nn.Linear(3, 2), (3,)) is None or True
        True
    """
    if not torch.cuda.is_available():
        return None
    device = torch.device(device or f"cuda:{torch.cuda.current_device()}")
    on_device = all(p.device == device for p in model.parameters())
    model = model if on_device else copy.deepcopy(model).to(device)
    x = _example(input_shape, batch_size, device)

    def run() -> float:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        model(x)
        end.record()
        torch.cuda.synchronize(device)
        return float(start.elapsed_time(end))

    return _timed(model, x, warmup, repeats, run)


class Measured:
    """An evaluator that measures the built model, then runs the wrapped evaluator.

    See :func:`measured`. It is picklable (process and Ray workers run it).
    """

    sn_input = "model"

    def __init__(
        self,
        evaluate: Callable[[Any], Any],
        *,
        input_shape: Sequence[int],
        measure: Sequence[str],
        batch_size: int,
        warmup: int,
        repeats: int,
    ) -> None:
        if not callable(evaluate) or getattr(evaluate, "sn_input", "model") != "model":
            raise ValueError(
                "`evaluate` must be an evaluator of the built model (measurements need the "
                f"model), but got {evaluate!r}"
            )
        if isinstance(measure, str) or not measure or any(m not in MEASUREMENTS for m in measure):
            raise ValueError(
                f"`measure` must be a list of {list(MEASUREMENTS)}, but got {measure!r}"
            )
        shape_ok = (
            isinstance(input_shape, (list, tuple))
            and len(input_shape) > 0
            and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in input_shape)
        )
        if not shape_ok:
            raise ValueError(
                "`input_shape` must be the shape of one example (a tuple of ints > 0, e.g. "
                f"(1, 28, 28)), but got {input_shape!r}"
            )
        for name, value, low in (("batch_size", batch_size, 1), ("warmup", warmup, 0),
                                 ("repeats", repeats, 1)):  # fmt: skip
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"`{name}` must be an int >= {low}, but got {value!r}")
        self.evaluate = evaluate
        self.input_shape = tuple(input_shape)
        self.measure = list(measure)
        self.batch_size, self.warmup, self.repeats = batch_size, warmup, repeats

    def measurements(self, model: nn.Module) -> dict[str, float]:
        """The requested measurements of ``model`` (GPU latency only where CUDA is)."""
        out: dict[str, float] = {}
        shape, b = self.input_shape, self.batch_size
        if "params" in self.measure:
            out["params"] = count_parameters(model)
        if "flops" in self.measure:
            out["flops"] = count_flops(model, shape, batch_size=b)
        if "cpu_latency_ms" in self.measure:
            out["cpu_latency_ms"] = cpu_latency_ms(
                model, shape, batch_size=b, warmup=self.warmup, repeats=self.repeats
            )
        if "gpu_latency_ms" in self.measure:
            latency = gpu_latency_ms(model, shape, batch_size=b)
            if latency is not None:
                out["gpu_latency_ms"] = latency
        return out

    def __call__(self, model: nn.Module) -> Any:
        found = self.measurements(model)
        value = self.evaluate(model)
        if isinstance(value, dict):
            return {**value, **found}
        return {"reward": value, **found}


def measured(
    evaluate: Callable[[Any], Any],
    *,
    input_shape: Sequence[int],
    measure: Sequence[str] = ("params", "flops", "cpu_latency_ms"),
    batch_size: int = 1,
    warmup: int = 3,
    repeats: int = 10,
) -> Measured:
    """``evaluate`` with built-in measurements of each trial's model added to its metrics.

    The measurements run in the worker on the freshly built model, before
    ``evaluate`` trains it: ``"params"`` (count), ``"flops"`` (one forward pass of
    ``batch_size`` examples, ``torch.utils.flop_counter``), ``"cpu_latency_ms"``
    (median of ``repeats`` after ``warmup``, one thread) and ``"gpu_latency_ms"``
    (added only where CUDA is available). A float ``evaluate`` returns stays the
    ``"reward"``.

    Args:
        evaluate: An evaluator of the built model (``sn.Trainer()`` is one).
        input_shape: The shape of one input example, e.g. ``(1, 28, 28)``.
        measure: Which of :data:`MEASUREMENTS` to take.
        batch_size: The batch size of the measured forward passes.
        warmup: Untimed forward passes before timing.
        repeats: Timed forward passes (their median is reported).

    Example:
        >>> import symbolic_nas as sn
        >>> space = sn.symbolize(nn.Linear)(4, sn.oneof([2, 8]))
        >>> evaluate = measured(lambda model: 1.0, input_shape=(4,), measure=["params", "flops"])
        >>> result = sn.search(space, evaluate, algorithm="random", num_trials=2, seed=0)
        >>> sorted(result.trials[0].metrics)
        ['flops', 'params', 'reward']
    """
    return Measured(
        evaluate,
        input_shape=input_shape,
        measure=measure,
        batch_size=batch_size,
        warmup=warmup,
        repeats=repeats,
    )
