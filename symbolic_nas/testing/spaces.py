"""The space contract suite: checks every search space must pass.

A space passes when it encodes (random token sequences survive the round trip
through ``pg.DNA``), its materialised models run a tiny forward call with one
consistent output shape, the same tokens always give the same architecture,
and every token of every decision is reachable by a valid sequence (and builds).

Each check raises ``AssertionError`` with a message naming the space's decision
or tokens at fault, and returns nothing useful on success (``check_space_reachable``
returns the covering sequences). Run them on your own space::

    from symbolic_nas.testing import check_space
    check_space(space, torch.randn(2, 3, 8, 8), output_shape=(2, 10))

or on a registered one with its registered example input::

    check_registered_space("zoph_le_cnn", num_layers=3)
"""

from __future__ import annotations

import random
from typing import Any

import torch
from torch import nn

from symbolic_nas.space.codec import Codec, Walker, encode

__all__ = [
    "check_registered_space",
    "check_space",
    "check_space_deterministic",
    "check_space_encoding",
    "check_space_forward",
    "check_space_reachable",
]


def _codec(space: Any) -> Codec:
    return space if isinstance(space, Codec) else encode(space)


def _as_args(inputs: Any) -> tuple[Any, ...]:
    return inputs if isinstance(inputs, tuple) else (inputs,)


def _map_tensors(value: Any, fn: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, (tuple, list)):
        return type(value)(_map_tensors(v, fn) for v in value)
    if isinstance(value, dict):
        return {k: _map_tensors(v, fn) for k, v in value.items()}
    return value


def _shapes(value: Any) -> Any:
    """Shapes of a (nested) output: a tuple of ints per tensor, tuples for sequences."""
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, (tuple, list)):
        return tuple(_shapes(v) for v in value)
    if isinstance(value, dict):
        return {k: _shapes(v) for k, v in value.items()}
    raise AssertionError(f"model output must hold only tensors, but got {type(value).__name__}")


def _normalise_shape(shape: Any) -> Any:
    if isinstance(shape, torch.Size):
        return tuple(shape)
    if isinstance(shape, (tuple, list)):
        if all(isinstance(s, int) for s in shape):
            return tuple(shape)
        return tuple(_normalise_shape(s) for s in shape)
    return shape


def _all_finite(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return bool(torch.isfinite(value).all())
    if isinstance(value, (tuple, list)):
        return all(_all_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_all_finite(v) for v in value.values())
    return True


def _run(model: Any, inputs: Any) -> Any:
    if not isinstance(model, nn.Module):
        raise AssertionError(
            f"materialize must return an nn.Module, but got {type(model).__name__}"
        )
    model.eval()
    with torch.no_grad():
        return model(*_as_args(inputs))


def check_space_encoding(space: Any, *, num_samples: int = 5, seed: int = 0) -> Codec:
    """The space encodes; random token sequences are valid and survive tokens -> DNA -> tokens.

    Args:
        space: A search space or its codec.
        num_samples: Random sequences to round-trip.
        seed: Seed of the sampling.

    Returns:
        The codec.

    Example:
        >>> import symbolic_nas as sn
        >>> check_space_encoding({"k": sn.oneof([3, 5])}).num_decisions
        1
    """
    codec = _codec(space)
    names = [d.name for d in codec.decisions]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise AssertionError(f"decision names must be unique, but {repeated} repeat")
    rng = random.Random(seed)
    for _ in range(num_samples):
        tokens = codec.random_tokens(rng)
        if not codec.is_valid(tokens):
            raise AssertionError(f"random_tokens gave an invalid sequence {tokens}")
        dna = codec.from_tokens(tokens)
        back = codec.to_tokens(dna)
        if back != tokens:
            raise AssertionError(f"tokens {tokens} -> DNA {dna} -> tokens {back}: not the same")
    return codec


def check_space_forward(
    space: Any,
    inputs: Any,
    *,
    output_shape: Any = None,
    num_samples: int = 3,
    seed: int = 0,
) -> None:
    """Random architectures materialise into modules whose forward call gives one shape.

    Each of ``num_samples`` random architectures is materialised and called as
    ``model(*inputs)`` in eval mode without gradients; the outputs must be
    finite and have the same shapes (equal to ``output_shape`` when given).

    Args:
        space: A search space or its codec.
        inputs: A tensor, or a tuple of ``forward``'s positional arguments.
        output_shape: Expected shapes (nested tuples for nested outputs), or None.
        num_samples: Architectures to try.
        seed: Seed of the sampling.

    Example:
        >>> import torch, torch.nn as nn, symbolic_nas as sn
        >>> space = sn.symbolize(nn.Linear)(4, sn.oneof([2, 3]))
        >>> check_space_forward(space, torch.zeros(1, 4))   # shapes differ: (1, 2) vs (1, 3)
        Traceback (most recent call last):
        ...
        AssertionError: output shapes must not depend on the architecture, ...
    """
    codec = _codec(space)
    rng = random.Random(seed)
    expected = _normalise_shape(output_shape)
    first: tuple[list[int], Any] | None = None
    for _ in range(num_samples):
        tokens = codec.random_tokens(rng)
        output = _run(codec.materialize(tokens), inputs)
        shapes = _shapes(output)
        if expected is not None:
            if shapes != expected:
                raise AssertionError(
                    f"output shapes must be {expected}, but tokens {tokens} gave {shapes}"
                )
        elif first is not None and shapes != first[1]:
            raise AssertionError(
                "output shapes must not depend on the architecture, but tokens "
                f"{first[0]} gave {first[1]} and tokens {tokens} gave {shapes}"
            )
        first = first or (tokens, shapes)
        if not _all_finite(output):
            raise AssertionError(f"tokens {tokens} gave a non-finite output")


def check_space_deterministic(space: Any, inputs: Any, *, seed: int = 0) -> None:
    """The same tokens (or their DNA) always materialise into the same architecture.

    A random token sequence is materialised twice, once from the tokens and once
    through its ``pg.DNA``; the two must print the same, hold parameters and
    buffers of the same names and shapes but share no tensor, and compute the
    same output once the second has loaded the first one's ``state_dict``.

    Example:
        >>> import symbolic_nas as sn, torch, torch.nn as nn
        >>> space = sn.symbolize(nn.Linear)(4, sn.oneof([2, 3]))
        >>> check_space_deterministic(space, torch.ones(1, 4))
    """
    codec = _codec(space)
    tokens = codec.random_tokens(random.Random(seed))
    first = codec.materialize(tokens)
    second = codec.materialize(codec.to_tokens(codec.from_tokens(tokens)))
    if repr(second) != repr(first):
        raise AssertionError(
            f"tokens {tokens} must give the same architecture every time, but got\n"
            f"{first}\nand\n{second}"
        )
    if _signature(second) != _signature(first):
        raise AssertionError(
            f"tokens {tokens} must give the same parameters and buffers every time"
        )
    if _storages(first) & _storages(second):
        raise AssertionError(f"two materialisations of tokens {tokens} share tensors")
    second.load_state_dict(first.state_dict())
    if not _same(_run(first, inputs), _run(second, inputs)):
        raise AssertionError(f"tokens {tokens} with equal weights must compute the same output")


def _storages(model: nn.Module) -> set[int]:
    tensors = [*model.parameters(), *model.buffers()]
    return {t.untyped_storage().data_ptr() for t in tensors if t.numel()}


def _signature(model: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(name, tuple(t.shape)) for name, t in model.state_dict().items()]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def _required(codec: Codec, decision: int, token: int) -> dict[int, int]:
    """The tokens that the decision's ancestors must take for it to be active."""
    need = {decision: token}
    d = codec.decisions[decision]
    while d.parent is not None and d.parent_value is not None:  # set together
        need[d.parent] = d.parent_value
        d = codec.decisions[d.parent]
    return need


def _reaching_sequence(
    codec: Codec, need: dict[int, int], uncovered: set[tuple[int, int]], budget: list[int]
) -> list[int] | None:
    """A valid complete sequence taking every ``need`` token, or None.

    Depth first with backtracking (masks of exact-k or distinct groups may rule a
    needed token out after some earlier choices); the other decisions prefer
    tokens not covered yet. ``budget[0]`` counts the tokens tried.
    """
    prefix: list[int] = []
    alternatives: list[list[int]] = []  # untried tokens at each position of prefix
    walker = Walker(codec)
    while True:
        if walker.done:
            taken = dict(zip(codec.trace(prefix), prefix))
            if all(taken.get(d) == t for d, t in need.items()):
                return prefix
            candidates: list[int] = []
        else:
            d = walker.decision
            valid = walker.valid_tokens()
            if d in need:
                candidates = [need[d]] if need[d] in valid else []
            else:
                fresh = [t for t in valid if (d, t) in uncovered]
                candidates = fresh + [t for t in valid if t not in fresh]
        if candidates:
            alternatives.append(candidates[1:])
            prefix.append(candidates[0])
            walker.push(candidates[0])
        else:
            while alternatives and not alternatives[-1]:
                alternatives.pop()
                prefix.pop()
            if not alternatives:
                return None
            prefix[-1] = alternatives[-1].pop(0)
            walker = Walker(codec)
            for token in prefix:
                walker.push(token)
        budget[0] -= 1
        if budget[0] < 0:
            return None


def check_space_reachable(
    space: Any,
    inputs: Any = None,
    *,
    output_shape: Any = None,
    device: str | torch.device = "cpu",
    max_steps: int = 200_000,
) -> list[list[int]]:
    """Every token of every decision is taken by some valid sequence (which builds).

    Greedily finds a small set of valid token sequences that together take every
    token of every decision (conditional decisions included); when ``inputs`` are
    given each of them is also materialised and called (see
    :func:`check_space_forward`). Pass ``device="meta"`` to build and run them on
    PyTorch's meta device: shapes only, no memory or arithmetic (large models).

    Args:
        space: A search space or its codec.
        inputs: Optional forward inputs (a tensor or a tuple of positional arguments).
        output_shape: Expected output shapes, or None for "the same for all".
        device: Where to build and run the covering architectures.
        max_steps: Search budget (tokens tried) before a choice is declared unreachable.

    Returns:
        The covering token sequences.

    Example:
        >>> import symbolic_nas as sn
        >>> space = sn.oneof([{"a": sn.oneof([1, 2])}, {"b": sn.oneof([3, 4, 5])}])
        >>> len(check_space_reachable(space))   # a sequence takes either "a" or "b"
        5
    """
    codec = _codec(space)
    uncovered = {(d.index, t) for d in codec.decisions for t in range(d.vocab_size)}
    budget = [max_steps]
    sequences: list[list[int]] = []
    for d in codec.decisions:
        for t in range(d.vocab_size):
            if (d.index, t) not in uncovered:
                continue
            tokens = _reaching_sequence(codec, _required(codec, d.index, t), uncovered, budget)
            if tokens is None:
                raise AssertionError(
                    f"token {t} ({d.labels[t]!r}) of decision {d.name!r} must be reachable by "
                    f"a valid sequence, but none was found within {max_steps} steps"
                )
            uncovered -= set(zip(codec.trace(tokens), tokens))
            sequences.append(tokens)
    if inputs is not None:
        expected = _normalise_shape(output_shape)
        device = torch.device(device)
        inputs_on = _map_tensors(_as_args(inputs), lambda x: x.to(device))
        for tokens in sequences:
            with device:
                model = codec.materialize(tokens)
            shapes = _shapes(_run(model, inputs_on))
            if expected is None:
                expected = shapes
            if shapes != expected:
                raise AssertionError(
                    f"output shapes must be {expected}, but tokens {tokens} gave {shapes}"
                )
    return sequences


def check_space(
    space: Any,
    inputs: Any,
    *,
    output_shape: Any = None,
    num_samples: int = 3,
    seed: int = 0,
    reach_device: str | torch.device = "cpu",
) -> None:
    """Runs the whole space contract: encoding, forward, determinism, reachability.

    Args:
        space: A search space or its codec.
        inputs: A tensor, or a tuple of ``forward``'s positional arguments.
        output_shape: Expected output shapes (nested tuples for nested outputs), or
            None to require only that all architectures agree.
        num_samples: Random architectures for the forward check.
        seed: Seed of all sampling.
        reach_device: Device on which the covering architectures of the
            reachability check are built and run (``"meta"`` for large models).

    Example:
        >>> import torch, torch.nn as nn, symbolic_nas as sn
        >>> Conv = sn.symbolize(nn.Conv2d)
        >>> space = Conv(3, 8, sn.oneof([1, 3]), padding=sn.oneof([0, 1]))
        >>> check_space(space, torch.zeros(1, 3, 5, 5))   # kernel 1 with padding 1 grows the map
        Traceback (most recent call last):
        ...
        AssertionError: output shapes must not depend on the architecture, ...
    """
    codec = check_space_encoding(space, seed=seed)
    check_space_forward(
        codec, inputs, output_shape=output_shape, num_samples=num_samples, seed=seed
    )
    check_space_deterministic(codec, inputs, seed=seed)
    check_space_reachable(codec, inputs, output_shape=output_shape, device=reach_device)


def check_registered_space(
    name: str, *, reach_device: str | torch.device = "cpu", seed: int = 0, **kwargs: Any
) -> None:
    """:func:`check_space` on ``spaces.get(name, **kwargs)`` with its registered example.

    Example:
        >>> check_registered_space("nasbench201", C=2, N=1)
    """
    from symbolic_nas import spaces

    example = spaces.example(name, **kwargs)
    check_space(
        spaces.get(name, **kwargs),
        example.inputs,
        output_shape=example.output_shape,
        seed=seed,
        reach_device=reach_device,
    )
