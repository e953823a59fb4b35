"""``annotate``: turn an already-built ``nn.Module`` into a search space.

Each submodule matched by a rule becomes one decision among the rule's
candidates: ``sn.keep`` (the submodule as it is, with its trained weights) or a
callable ``original_module -> nn.Module``. Materialising deep-copies the base
model and swaps in the chosen candidates; the base model is never modified.
"""

from __future__ import annotations

import copy
import fnmatch
import weakref
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

import pyglove as pg
import torch
from torch import nn

__all__ = ["Annotated", "annotate", "describe_failure", "keep"]


class _Keep:
    """The candidate that keeps a submodule unchanged."""

    _instance: _Keep | None = None

    def __new__(cls) -> _Keep:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "sn.keep"

    def __reduce__(self) -> str:
        return "keep"


keep = _Keep()
"""Candidate meaning "leave this submodule as it is" (``sn.keep``)."""

Selector = type | str | Callable[[str, nn.Module], bool]
Candidate = Any  # sn.keep or Callable[[nn.Module], nn.Module]

_CHECKED_ATTRIBUTES = (
    "in_channels",
    "out_channels",
    "in_features",
    "out_features",
    "num_features",
    "embedding_dim",
)


@pg.members(
    [
        ("model", pg.typing.Any(), "The base model (never modified)."),
        ("paths", pg.typing.List(pg.typing.Str()), "Dotted names of the matched submodules."),
        ("candidates", pg.typing.List(pg.typing.Any()), "Candidate callables per path."),
        ("choices", pg.typing.List(pg.typing.Any()), "One oneof over candidate labels per path."),
        (
            "shapes",
            pg.typing.Any(default=None),
            "Recorded (inputs, output) shapes per path, or None.",
        ),
    ]
)
class Annotated(pg.Object):
    """A search space made from an existing module by :func:`annotate`."""

    def format(
        self, compact: bool = False, verbose: bool = True, root_indent: int = 0, **kwargs: Any
    ) -> str:
        del compact, verbose, root_indent, kwargs
        parts = ", ".join(
            f"{p or '<root>'}: {pg.format(list(c.candidates), compact=True)}"
            for p, c in zip(self.paths, self.choices)
        )
        return f"annotate({type(self.model).__name__}, {{{parts}}})"

    def build(self, labels: Sequence[str]) -> nn.Module:
        """Deep-copies the base model and swaps in the candidates chosen by ``labels``."""
        model = copy.deepcopy(self.model)
        swaps: list[tuple[str, int, str]] = []
        for index, (path, label) in enumerate(zip(self.paths, labels)):
            choice = self.choices[index]
            token = list(choice.candidates).index(label)
            candidate = self.candidates[index][token]
            if candidate is keep:
                continue
            shapes = None if self.shapes is None else self.shapes[index]
            model = _swap(model, path, token, label, candidate, shapes)
            swaps.append((path, token, label))
        if self.shapes is None and swaps:
            _SWAPS[model] = swaps  # for describe_failure, while the model lives
        return model


# Materialised models built without recorded shapes -> their swaps (path, token, label).
_SWAPS: weakref.WeakKeyDictionary[nn.Module, list[tuple[str, int, str]]] = (
    weakref.WeakKeyDictionary()
)


def describe_failure(error: BaseException) -> str | None:
    """Names the submodule and the swaps behind an error raised in the forward of a
    model materialised from an :func:`annotate` space without ``example_inputs``.

    A swap that does not fit (e.g. a convolution with another stride) often fails
    only later, in a kept submodule, with a bare shape error such as ``mat1 and
    mat2 shapes cannot be multiplied``. This reads the error's traceback for the
    innermost submodule that was running and returns a sentence naming it and
    every swapped submodule with its candidate; None when the error did not come
    from such a model.

    Example:
        >>> import torch, torch.nn as nn, symbolic_nas as sn
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Flatten(), nn.Linear(32, 2))
        >>> strided = lambda c: nn.Conv2d(1, 2, 3, stride=2, padding=1)
        >>> space = sn.annotate(net, {"0": [sn.keep, strided]})
        >>> model = sn.materialize(space, [1])
        >>> try:
        ...     model(torch.zeros(1, 1, 4, 4))
        ... except RuntimeError as e:
        ...     print(describe_failure(e))  # doctest: +ELLIPSIS
        in submodule '2' (Linear) of an annotated...'0' (candidate 1, ...); pass `example_inputs`...
    """
    modules: list[nn.Module] = []
    tb: TracebackType | None = error.__traceback__
    while tb is not None:
        candidate = tb.tb_frame.f_locals.get("self")
        if isinstance(candidate, nn.Module):
            modules.append(candidate)
        tb = tb.tb_next
    root = next((m for m in modules if m in _SWAPS), None)
    if root is None:
        return None
    paths = {id(m): name for name, m in root.named_modules()}
    inner = next((m for m in reversed(modules) if id(m) in paths), root)
    swapped = ", ".join(
        f"{p or '<root>'!r} (candidate {t}, {label})" for p, t, label in _SWAPS[root]
    )
    return (
        f"in submodule {paths[id(inner)] or '<root>'!r} ({type(inner).__name__}) of an "
        f"annotated model whose swapped submodules are {swapped}; pass `example_inputs` "
        "to sn.annotate to have every swap checked against recorded shapes when it is built"
    )


def _label(candidate: Candidate, index: int) -> str:
    if candidate is keep:
        return "keep"
    name = getattr(candidate, "__name__", None)
    return f"{index}:{name or type(candidate).__name__}"


def _matches(selector: Selector, name: str, module: nn.Module) -> bool:
    if isinstance(selector, type):
        return isinstance(module, selector)
    if isinstance(selector, str):
        return fnmatch.fnmatchcase(name, selector)
    return bool(selector(name, module))


def _check_selector(selector: Any) -> None:
    if isinstance(selector, (type, str)) or callable(selector):
        return
    raise TypeError(
        "a rule selector must be a module type, a glob over dotted module names or a "
        f"predicate (name, module) -> bool, but got {selector!r}"
    )


def _check_candidates(selector: Any, candidates: Any) -> list[Candidate]:
    if isinstance(candidates, (Mapping, str, bytes)):
        raise TypeError(
            f"the candidates of rule {selector!r} must be a list of sn.keep or callables, "
            f"but got {candidates!r}"
        )
    values = list(candidates) if isinstance(candidates, Sequence) else None
    if not values:
        raise ValueError(
            f"the candidates of rule {selector!r} must be a non-empty list, but got {candidates!r}"
        )
    for value in values:
        if value is not keep and (not callable(value) or isinstance(value, (nn.Module, type))):
            raise TypeError(
                f"each candidate of rule {selector!r} must be sn.keep or a callable "
                f"original_module -> nn.Module, but got {value!r}"
            )
    return values


def annotate(
    model: nn.Module,
    rules: Mapping[Selector, Sequence[Candidate]],
    *,
    example_inputs: Any = None,
) -> Annotated:
    """Turns an existing module into a search space, without touching its source.

    Args:
        model: The base model. It is never modified; each materialisation works on
            its own deep copy.
        rules: Maps a selector to a list of candidates. A selector is a module type,
            a glob over the dotted names of ``model.named_modules()`` (``"layer*.conv2"``)
            or a predicate ``(name, module) -> bool``. A candidate is ``sn.keep`` or a
            callable ``original_module -> nn.Module`` (it receives the submodule of
            the materialisation's own copy, so it may reuse its weights). Decisions
            follow ``named_modules()`` order; a module matched by one rule is not
            matched again by a later rule nor through its children; token ``i`` picks
            candidate ``i``.
        example_inputs: Optional input (a tensor or a tuple of positional inputs) for
            ``model``. When given, the input and output shapes of every matched
            submodule are recorded, and each swapped-in candidate is checked against
            them at materialisation.

    Returns:
        An :class:`Annotated` space; pass it to ``sn.encode`` and ``sn.materialize``.

    Raises:
        TypeError, ValueError: a malformed rule, or a rule that matches nothing.

    Example:
        >>> import torch.nn as nn, symbolic_nas as sn
        >>> net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU())
        >>> space = sn.annotate(net, {nn.Conv2d: [
        ...     sn.keep, lambda c: nn.Conv2d(c.in_channels, c.out_channels, 5, c.stride, 2)]})
        >>> sn.encode(space).decisions[0].vocab_size
        2
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` of annotate must be an nn.Module, but got {model!r}")
    if not isinstance(rules, Mapping) or not rules:
        raise ValueError(f"`rules` of annotate must be a non-empty mapping, but got {rules!r}")
    checked = []
    for selector, candidates in rules.items():
        _check_selector(selector)
        checked.append((selector, _check_candidates(selector, candidates)))

    matched: list[tuple[str, list[Candidate]]] = []
    used = [False] * len(checked)
    for name, module in model.named_modules():
        if any(_is_inside(name, m) for m, _ in matched):
            continue
        for r, (selector, candidates) in enumerate(checked):
            if _matches(selector, name, module):
                matched.append((name, candidates))
                used[r] = True
                break
    for r, (selector, _) in enumerate(checked):
        if not used[r]:
            raise ValueError(
                f"each rule of annotate must match a submodule of {type(model).__name__}, "
                f"but rule {selector!r} matched none"
            )

    shapes = _record_shapes(model, [p for p, _ in matched], example_inputs)
    choices = []
    for path, candidates in matched:
        labels = [_label(c, i) for i, c in enumerate(candidates)]
        choices.append(pg.oneof(labels, name=path or "<root>", hints={"module": path}))
    return Annotated(
        model=model,
        paths=[p for p, _ in matched],
        candidates=[c for _, c in matched],
        choices=choices,
        shapes=shapes,
    )


def _is_inside(name: str, ancestor: str) -> bool:
    return ancestor == "" or name == ancestor or name.startswith(ancestor + ".")


def _shape_of(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, (list, tuple)):
        return tuple(_shape_of(v) for v in value)
    return None


def _record_shapes(
    model: nn.Module, paths: list[str], example_inputs: Any
) -> list[tuple[Any, Any]] | None:
    if example_inputs is None:
        return None
    inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    shapes: dict[str, tuple[Any, Any]] = {}
    handles = []
    for path in paths:

        def hook(_module: nn.Module, args: Any, output: Any, path: str = path) -> None:
            shapes.setdefault(path, (_shape_of(args), _shape_of(output)))

        handles.append(model.get_submodule(path).register_forward_hook(hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(*inputs)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    missing = [p for p in paths if p not in shapes]
    if missing:
        raise ValueError(
            "annotate: every matched submodule must run on `example_inputs`, but "
            f"{missing[0]!r} was never called"
        )
    return [shapes[p] for p in paths]


def _swap(
    model: nn.Module,
    path: str,
    token: int,
    label: str,
    candidate: Callable[[nn.Module], nn.Module],
    shapes: tuple[Any, Any] | None,
) -> nn.Module:
    where = f"submodule {path or '<root>'!r}, candidate {token} ({label})"
    original = model.get_submodule(path)
    try:
        replacement = candidate(original)
    except Exception as e:
        raise RuntimeError(f"annotate: building {where} failed: {e}") from e
    if not isinstance(replacement, nn.Module):
        raise TypeError(f"annotate: {where} must return an nn.Module, but got {replacement!r}")
    for attr in _CHECKED_ATTRIBUTES:
        before, after = getattr(original, attr, None), getattr(replacement, attr, None)
        if isinstance(before, int) and isinstance(after, int) and before != after:
            raise ValueError(
                f"annotate: {where} does not fit: `{attr}` must stay {before}, but got {after}"
            )
    if shapes is not None:
        _check_shapes(replacement, where, shapes)
    if path == "":
        return replacement
    parent_path, _, child = path.rpartition(".")
    setattr(model.get_submodule(parent_path), child, replacement)
    return model


def _check_shapes(module: nn.Module, where: str, shapes: tuple[Any, Any]) -> None:
    def zeros(shape: Any) -> Any:
        if shape is None:
            return None
        if shape and all(isinstance(s, int) for s in shape):
            return torch.zeros(shape)
        return tuple(zeros(s) for s in shape)

    input_shapes, output_shape = shapes
    inputs = zeros(input_shapes)
    was_training = module.training
    try:
        module.eval()
        with torch.no_grad():
            output = module(*inputs)
    except Exception as e:
        raise ValueError(
            f"annotate: {where} does not fit: it fails on inputs of shape {input_shapes}: {e}"
        ) from e
    finally:
        module.train(was_training)
    if _shape_of(output) != output_shape:
        raise ValueError(
            f"annotate: {where} does not fit: output shape must be {output_shape}, "
            f"but got {_shape_of(output)}"
        )
