"""``annotate``: turn an already-built ``nn.Module`` into a search space.

Each submodule matched by a rule becomes one decision among the rule's
candidates: ``sn.keep`` (the submodule as it is, with its trained weights), a
module class or a ``functools.partial`` of one (called with no further
arguments: ``nn.GELU``, ``partial(nn.Dropout, 0.2)``), or any other callable
``original_module -> nn.Module`` (a ``partial`` of a function included). Give
the candidates as a dict to name them; unnamed ones get a readable label
(:func:`candidate_label`). Materialising deep-copies the base
model and swaps in the chosen candidates; the base model is never modified.
"""

from __future__ import annotations

import copy
import fnmatch
import functools
import weakref
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

import pyglove as pg
import torch
from torch import nn

from symbolic_nas.space.meta import building_on_meta, deepcopy_for_build

__all__ = ["Annotated", "annotate", "candidate_label", "describe_failure", "keep"]


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
Candidate = Any  # sn.keep, a module class or Callable[[nn.Module], nn.Module]

# Constructor arguments a label shows when they tell a candidate from the original.
_LABEL_ATTRIBUTES = {
    "out_channels": "out",
    "out_features": "out",
    "kernel_size": "k",
    "stride": "s",
    "padding": "p",
    "dilation": "d",
    "groups": "g",
    "p": "p",
    "negative_slope": "slope",
    "num_heads": "heads",
}

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
            f"{p or '<root>'}: {pg.format(_labels(c), compact=True)}"
            for p, c in zip(self.paths, self.choices)
        )
        return f"annotate({type(self.model).__name__}, {{{parts}}})"

    def build(self, keys: Sequence[str]) -> nn.Module:
        """Deep-copies the base model and swaps in the candidates chosen by ``keys``
        (the values of :attr:`choices`)."""
        model = deepcopy_for_build(self.model)
        swaps: list[tuple[str, int, str]] = []
        for index, (path, key) in enumerate(zip(self.paths, keys)):
            choice = self.choices[index]
            token = list(choice.candidates).index(key)
            candidate = self.candidates[index][token]
            if candidate is keep:
                continue
            shapes = None if self.shapes is None else self.shapes[index]
            # A weight-sharing pool builds the same children again and again: on the
            # meta device (where shape checks run slowly), a swap is checked once.
            checked = _checked_swaps(self) if building_on_meta() else None
            if checked is not None and (index, token) in checked:
                shapes = None
            label = _labels(choice)[token]
            model = _swap(model, path, token, label, candidate, shapes)
            if checked is not None:
                checked.add((index, token))
            swaps.append((path, token, label))
        if self.shapes is None and swaps:
            _SWAPS[model] = swaps  # for describe_failure, while the model lives
        return model


# Materialised models built without recorded shapes -> their swaps (path, token, label).
# id() of an Annotated space -> its swaps (index, token) shape-checked by a meta build
# (the space removes its entry when it is garbage-collected).
_CHECKED: dict[int, set[tuple[int, int]]] = {}


def _checked_swaps(space: Annotated) -> set[tuple[int, int]]:
    checked = _CHECKED.get(id(space))
    if checked is None:
        checked = _CHECKED[id(space)] = set()
        weakref.finalize(space, _CHECKED.pop, id(space), None)
    return checked


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


def _labels(choice: pg.hyper.OneOf) -> list[str]:
    """The display labels of an annotate choice (its keys when it has none)."""
    hints = choice.hints if isinstance(choice.hints, dict) else {}
    return list(hints.get("labels") or choice.candidates)


def _label(candidate: Candidate, index: int) -> str:
    """The label of earlier versions: the key of a choice (the fingerprint hashes it)."""
    if candidate is keep:
        return "keep"
    name = getattr(candidate, "__name__", None)
    return f"{index}:{name or type(candidate).__name__}"


def _unique(labels: list[str]) -> list[str]:
    if len(set(labels)) < len(labels):
        return [f"{i}:{label}" for i, label in enumerate(labels)]
    return labels


def _is_class_factory(candidate: Candidate) -> bool:
    """Whether ``candidate`` is called with no arguments (a class, or a partial of one)."""
    if isinstance(candidate, functools.partial):
        return isinstance(candidate.func, type)
    return isinstance(candidate, type)


def _build(candidate: Candidate, original: nn.Module) -> Any:
    return candidate() if _is_class_factory(candidate) else candidate(original)


def _short(value: Any) -> str:
    if isinstance(value, tuple) and value and all(v == value[0] for v in value):
        value = value[0]  # (5, 5) -> 5
    return repr(value)


def _described(module: nn.Module, original: nn.Module | None) -> str:
    """``Conv2d(k=5)``: the class, plus the arguments that differ from ``original``."""
    name = type(module).__name__
    if original is None or type(original) is not type(module):
        return name
    diffs = [
        f"{short}={_short(getattr(module, attr))}"
        for attr, short in _LABEL_ATTRIBUTES.items()
        if hasattr(module, attr)
        and hasattr(original, attr)
        and getattr(module, attr) != getattr(original, attr)
    ]
    return f"{name}({', '.join(diffs)})" if diffs else name


def candidate_label(candidate: Candidate, original: nn.Module | None = None) -> str:
    """A readable default label of an annotate candidate.

    ``sn.keep`` is ``"keep"``, a class its name, a named function its name, a
    ``functools.partial`` its function's label with its arguments. A lambda is
    built once on a copy of ``original`` (when given) and labelled by what it
    returns: the class plus the arguments that differ from ``original``.

    Example:
        >>> import functools, torch.nn as nn, symbolic_nas as sn
        >>> conv = nn.Conv2d(8, 8, 3, padding=1)
        >>> [candidate_label(c, conv) for c in (sn.keep, nn.GELU,
        ...     functools.partial(nn.Dropout, 0.2), lambda c: nn.Conv2d(8, 8, 5, padding=2))]
        ['keep', 'GELU', 'Dropout(0.2)', 'Conv2d(k=5, p=2)']
    """
    if candidate is keep:
        return "keep"
    if isinstance(candidate, functools.partial):
        args = [repr(a) for a in candidate.args]
        args += [f"{k}={v!r}" for k, v in candidate.keywords.items()]
        return f"{candidate_label(candidate.func)}({', '.join(args)})"
    name = getattr(candidate, "__name__", None)
    if name and name != "<lambda>":
        return str(name)
    if name == "<lambda>" and original is not None:
        try:
            built = candidate(copy.deepcopy(original))
        except Exception:
            built = None
        if isinstance(built, nn.Module):
            return _described(built, original)
    return "lambda" if name else type(candidate).__name__


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


def _check_candidates(selector: Any, candidates: Any) -> tuple[list[Candidate], list[str] | None]:
    """The rule's candidates and their names (None when given as a list)."""
    if isinstance(candidates, (str, bytes)):
        raise TypeError(
            f"the candidates of rule {selector!r} must be a list or a dict of sn.keep, "
            f"module classes or callables, but got {candidates!r}"
        )
    names = None
    if isinstance(candidates, Mapping):
        names = list(candidates)
        for n in names:
            if not isinstance(n, str) or not n:
                raise TypeError(
                    f"each name of the candidates of rule {selector!r} must be a non-empty "
                    f"str, but got {n!r}"
                )
        values: list[Candidate] | None = list(candidates.values())
    else:
        values = list(candidates) if isinstance(candidates, Sequence) else None
    if not values:
        raise ValueError(
            f"the candidates of rule {selector!r} must be a non-empty list, but got {candidates!r}"
        )
    for value in values:
        is_class = isinstance(value, type)
        if is_class and issubclass(value, nn.Module):
            continue
        if value is not keep and (not callable(value) or isinstance(value, nn.Module) or is_class):
            raise TypeError(
                f"each candidate of rule {selector!r} must be sn.keep, an nn.Module class or "
                f"a callable original_module -> nn.Module, but got {value!r}"
            )
    return values, names


def annotate(
    model: nn.Module,
    rules: Mapping[Selector, Sequence[Candidate] | Mapping[str, Candidate]],
    *,
    example_inputs: Any = None,
) -> Annotated:
    """Turns an existing module into a search space, without touching its source.

    Args:
        model: The base model. It is never modified; each materialisation works on
            its own deep copy.
        rules: Maps a selector to its candidates: a list, or a dict from names (the
            choices' labels) to candidates. A selector is a module type,
            a glob over the dotted names of ``model.named_modules()`` (``"layer*.conv2"``)
            or a predicate ``(name, module) -> bool``. A candidate is ``sn.keep``, an
            ``nn.Module`` class or a ``functools.partial`` of one (called with no
            further arguments), or a callable ``original_module -> nn.Module`` (it
            receives the submodule of the materialisation's own copy, so it may
            reuse its weights). Unnamed candidates are labelled by
            :func:`candidate_label`, made unique with an index prefix. Decisions
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
        >>> sn.encode(space).decisions[0].labels
        ('keep', 'Conv2d(k=5, p=2)')
        >>> named = sn.annotate(net, {nn.ReLU: {"relu": sn.keep, "gelu": nn.GELU}})
        >>> sn.encode(named).decisions[0].labels
        ('relu', 'gelu')
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` of annotate must be an nn.Module, but got {model!r}")
    if not isinstance(rules, Mapping) or not rules:
        raise ValueError(f"`rules` of annotate must be a non-empty mapping, but got {rules!r}")
    checked = []
    for selector, candidates in rules.items():
        _check_selector(selector)
        checked.append((selector, _check_candidates(selector, candidates)))

    matched: list[tuple[str, tuple[list[Candidate], list[str] | None]]] = []
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
    for path, (candidates, names) in matched:
        keys = [_label(c, i) for i, c in enumerate(candidates)]  # the fingerprint's, unchanged
        if names is None:
            original = model.get_submodule(path)
            names = _unique([candidate_label(c, original) for c in candidates])
        hints = {"module": path, "labels": names}
        choices.append(pg.oneof(keys, name=path or "<root>", hints=hints))
    return Annotated(
        model=model,
        paths=[p for p, _ in matched],
        candidates=[c for _, (c, _) in matched],
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
    candidate: Candidate,
    shapes: tuple[Any, Any] | None,
) -> nn.Module:
    where = f"submodule {path or '<root>'!r}, candidate {token} ({label})"
    original = model.get_submodule(path)
    try:
        replacement = _build(candidate, original)
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
