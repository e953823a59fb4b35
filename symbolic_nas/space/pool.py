"""A pool of shared parameters, and building children whose tensors come from it.

Weight sharing (ENAS, Pham et al. 2018) trains one set of weights for every child of
a space. :class:`ParameterPool` holds that set, keyed by **module**: the key of a
module is its path in the child (``named_modules()`` name), its class, and the names
and shapes of its own parameters and buffers (:func:`module_key`), e.g.
``"blocks.1.conv|torch.nn.modules.conv.Conv2d|weight=16x8x3x3,bias=16"``. Two
children that hold the same kind of module, at the same place, with the same shapes
use the same tensors; a module that differs in any of the three gets its own. The
path makes sharing follow the structure the user wrote (as an ENAS supernet shares
an operation per position), the class keeps e.g. a ``Conv2d`` and a custom module
of equal shapes apart, and the shapes make sure a tensor is only shared where it
fits. Hyperparameters that leave the shapes alone (a convolution's stride, padding or
dilation) do not split a key: such modules share their weights.

:meth:`ParameterPool.build` builds a child on the ``meta`` device
(:func:`~symbolic_nas.space.meta.on_meta`: no memory is allocated and nothing is
initialised), then puts the pool's tensors into it. Only when a child holds modules
the pool lacks is it also built for real (under the caller's torch seed, exactly as
a stand-alone materialisation), and the new modules' tensors join the pool: so a new
module starts from its own initialisation and an ``sn.annotate`` space's kept
modules start from the base model's weights.

Batch norm running statistics are never shared (each child sees other statistics):
``batch_norm="recalibrate"`` gives each child fresh running statistics (to be
recalibrated on a few batches, as SPOS does), ``"batch_stats"`` turns them off so
that batch norm always normalises with the statistics of the batch it sees.

Example:
    >>> import torch.nn as nn, symbolic_nas as sn
    >>> Seq, Linear = sn.symbolize(nn.Sequential), sn.symbolize(nn.Linear)
    >>> codec = sn.encode(Seq(Linear(4, 8), Linear(8, sn.oneof([2, 3]))))
    >>> pool = ParameterPool()
    >>> a, b, c = (pool.build(codec, t).model for t in ([0], [1], [0]))
    >>> a[0].weight is b[0].weight, a[1].weight is b[1].weight, a[1].weight is c[1].weight
    (True, False, True)
    >>> pool.num_modules, pool.num_parameters
    (3, 85)
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import random
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, cast

import torch
from torch import nn

from symbolic_nas.space.codec import Codec, encode
from symbolic_nas.space.fingerprint import space_fingerprint
from symbolic_nas.space.meta import on_meta

__all__ = ["BATCH_NORM", "Built", "ParameterPool", "module_key", "shares_modules"]

#: How a child's batch norm gets its statistics (see the module docstring).
BATCH_NORM = ("recalibrate", "batch_stats")
_BN_STATS = ("running_mean", "running_var", "num_batches_tracked")
_FORMAT = 1


@dataclasses.dataclass
class Built:
    """A child built from a pool.

    Attributes:
        model: The child, holding the pool's tensors.
        new: Keys of the modules that joined the pool with this child.
        shared: Keys of the modules it took from the pool.
        meta: Whether it was built on the meta device only (nothing allocated but
            batch norm statistics).
    """

    model: Any
    new: list[str]
    shared: list[str]
    meta: bool


def is_batch_norm(module: nn.Module) -> bool:
    """Whether ``module`` is a batch norm (or instance norm) with running statistics."""
    return isinstance(module, nn.modules.batchnorm._NormBase)


def _own(module: nn.Module) -> list[tuple[str, torch.Tensor, bool]]:
    """``(name, tensor, is_parameter)`` of a module's own tensors, batch norm statistics
    excluded."""
    skip = _BN_STATS if is_batch_norm(module) else ()
    found: list[tuple[str, torch.Tensor, bool]] = [
        (n, p, True) for n, p in module._parameters.items() if p is not None
    ]
    found += [(n, b, False) for n, b in module._buffers.items() if b is not None and n not in skip]
    return found


def _put(module: nn.Module, name: str, tensor: torch.Tensor, is_param: bool) -> None:
    """Makes ``tensor`` the module's own parameter or buffer ``name``."""
    if is_param:
        module._parameters[name] = cast(nn.Parameter, tensor)
    else:
        module._buffers[name] = tensor


def module_key(path: str, module: nn.Module, tensors: Sequence[tuple[str, torch.Tensor]]) -> str:
    """The pool key of ``module`` at ``path`` holding ``tensors`` (name, tensor).

    Example:
        >>> module_key("head", nn.Linear(2, 3), list(nn.Linear(2, 3).named_parameters()))
        'head|torch.nn.modules.linear.Linear|weight=3x2,bias=3'
    """
    cls = type(module)
    shapes = ",".join(f"{name}={'x'.join(map(str, t.shape)) or '1'}" for name, t in tensors)
    return f"{path}|{cls.__module__}.{cls.__qualname__}|{shapes}"


def _modules_of(value: Any) -> Iterator[tuple[str, nn.Module]]:
    """``named_modules()`` of a built child (or of the ``"model"`` of a dict child)."""
    if isinstance(value, Mapping) and isinstance(value.get("model"), nn.Module):
        value = value["model"]
    if isinstance(value, nn.Module):
        yield from value.named_modules()


def _stray_meta(model: Any) -> str | None:
    """A tensor attribute left on the meta device that no parameter or buffer holds."""
    for path, module in _modules_of(model):
        for name, value in vars(module).items():
            if isinstance(value, torch.Tensor) and value.is_meta:
                return f"{path or '<root>'}.{name}"
    return None


class ParameterPool:
    """Shared parameters of a space's children, keyed by module (see the module docstring).

    Args:
        device: Where the pool's tensors live.

    Attributes:
        fingerprint: The fingerprint of the space the pool serves (set on first use).
        training: What the trainer of the pool keeps with it (optimizer state, data
            position, counters): JSON-able values and tensors, saved with the pool.
    """

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.fingerprint: str | None = None
        self.training: dict[str, Any] = {}
        #: The live optimizer over :meth:`parameters`, kept by the pool's trainer (its
        #: state goes into :attr:`training` when the pool is saved).
        self.optimizer: Any = None
        self._entries: dict[str, dict[str, torch.Tensor]] = {}
        self._meta_ok = True

    # ------------------------------------------------------------------ size

    @property
    def num_modules(self) -> int:
        """Modules in the pool."""
        return len(self._entries)

    @property
    def num_parameters(self) -> int:
        """Parameter elements in the pool (buffers not counted)."""
        return sum(p.numel() for p in self.parameters(trainable=False))

    def module_keys(self) -> list[str]:
        """The pool's module keys, in the order they joined."""
        return list(self._entries)

    def parameters(self, *, trainable: bool = True) -> list[nn.Parameter]:
        """The pool's parameters in a fixed order (the order they joined): those that
        require gradients, or all of them."""
        return [
            t
            for entry in self._entries.values()
            for t in entry.values()
            if isinstance(t, nn.Parameter) and (t.requires_grad or not trainable)
        ]

    def __repr__(self) -> str:
        return (
            f"ParameterPool({self.num_modules} modules, {self.num_parameters:,} parameters, "
            f"device={str(self.device)!r})"
        )

    # ------------------------------------------------------------------ space

    def bind(self, space: Any) -> Codec:
        """Ties the pool to ``space`` (on first use) and returns its codec.

        Raises:
            ValueError: If the pool already serves another space.
        """
        codec = space if isinstance(space, Codec) else encode(space)
        fingerprint = space_fingerprint(codec)
        if self.fingerprint is None:
            self.fingerprint = fingerprint
        elif self.fingerprint != fingerprint:
            raise ValueError(
                "`space` must be the space this pool was built for (a pool's tensors are keyed "
                f"by that space's modules; fingerprint {self.fingerprint[:12]}), but got a space "
                f"with fingerprint {fingerprint[:12]}; use a new pool for another space"
            )
        return codec

    def to(self, device: str | torch.device) -> ParameterPool:
        """Moves the pool's tensors to ``device`` in place (parameters stay the same
        objects, so an optimizer over them stays valid)."""
        self.device = torch.device(device)
        for entry in self._entries.values():
            for tensor in entry.values():
                tensor.data = tensor.data.to(self.device)
        return self

    # ------------------------------------------------------------------ building

    def build(
        self,
        codec: Codec,
        tokens: Sequence[int],
        *,
        batch_norm: str = "recalibrate",
        grow: bool = True,
    ) -> Built:
        """Builds the child of ``tokens`` holding the pool's tensors.

        Args:
            codec: The space's codec.
            tokens: The child's tokens.
            batch_norm: ``"recalibrate"`` (fresh running statistics) or
                ``"batch_stats"`` (no running statistics).
            grow: Whether modules the pool lacks join it (otherwise the child keeps
                its own fresh tensors for them).

        Returns:
            The :class:`Built` child; its tensors are on the pool's device.
        """
        if batch_norm not in BATCH_NORM:
            raise ValueError(f"`batch_norm` must be one of {BATCH_NORM}, but got {batch_norm!r}")
        model, real = self._meta_build(codec, tokens), None
        if model is None:
            model = real = codec.materialize(list(tokens))
        modules = list(_modules_of(model))
        seen: dict[int, torch.Tensor] = {}  # tied tensors: one pool tensor per child tensor
        new: list[str] = []
        shared: list[str] = []
        real_modules: dict[str, nn.Module] | None = None if real is None else dict(modules)
        for path, module in modules:
            own = [(n, t, p) for n, t, p in _own(module) if id(t) not in seen]
            for name, tensor, is_param in _own(module):
                if id(tensor) in seen:
                    _put(module, name, seen[id(tensor)], is_param)
            if own:
                key = module_key(path, module, [(n, t) for n, t, _ in own])
                entry = self._entries.get(key)
                if entry is None:
                    if real_modules is None:
                        real = codec.materialize(list(tokens))
                        real_modules = dict(_modules_of(real))
                    source = real_modules[path]
                    entry = {
                        n: self._adopt((source._parameters if p else source._buffers)[n])
                        for n, _, p in own
                    }
                    if grow:
                        self._entries[key] = entry
                        new.append(key)
                else:
                    shared.append(key)
                for name, tensor, is_param in own:
                    seen[id(tensor)] = entry[name]
                    _put(module, name, entry[name], is_param)
            if isinstance(module, nn.modules.batchnorm._NormBase):
                self._batch_norm(module, batch_norm)
        return Built(model, new, shared, meta=real is None)

    def _meta_build(self, codec: Codec, tokens: Sequence[int]) -> Any:
        """The child built on the meta device, or None if this space cannot be."""
        if not self._meta_ok:
            return None
        try:
            with on_meta():
                model = codec.materialize(list(tokens))
            stray = _stray_meta(model)
            if stray is not None:
                raise TypeError(f"{stray} is a tensor that is neither a parameter nor a buffer")
        except Exception as e:  # user code may not run on meta tensors: build for real
            self._meta_ok = False
            warnings.warn(
                f"this space's children cannot be built on the meta device ({type(e).__name__}: "
                f"{e}); every child is built for real, then given the pool's tensors",
                RuntimeWarning,
                stacklevel=3,
            )
            return None
        return model

    def _adopt(self, tensor: Any) -> torch.Tensor:
        data = tensor.detach().to(self.device, copy=True)
        if isinstance(tensor, nn.Parameter):
            return nn.Parameter(data, requires_grad=tensor.requires_grad)
        return data

    def _batch_norm(self, module: nn.modules.batchnorm._NormBase, mode: str) -> None:
        if not getattr(module, "track_running_stats", False):
            return
        if mode == "batch_stats":
            module.track_running_stats = False
            for name in _BN_STATS:
                module._buffers[name] = None
            return
        mean = module._buffers.get("running_mean")
        features = int(mean.shape[0]) if mean is not None else int(module.num_features)
        module._buffers["running_mean"] = torch.zeros(features, device=self.device)
        module._buffers["running_var"] = torch.ones(features, device=self.device)
        module._buffers["num_batches_tracked"] = torch.zeros(
            (), dtype=torch.long, device=self.device
        )

    def materialize(
        self, space: Any, tokens: Sequence[int], *, batch_norm: str = "recalibrate"
    ) -> Any:
        """A plain child of ``tokens`` holding *copies* of the pool's tensors.

        Modules the pool lacks keep their own fresh initialisation, and the pool is
        not changed; training the result (fine-tuning) leaves the pool alone. Batch
        norm statistics are fresh (``"recalibrate"``; recalibrate or fine-tune before
        evaluating) or off (``"batch_stats"``).

        Example:
            >>> import torch.nn as nn, symbolic_nas as sn
            >>> space = sn.symbolize(nn.Sequential)(sn.symbolize(nn.Linear)(2, sn.oneof([3, 4])))
            >>> pool = ParameterPool()
            >>> shared = pool.build(sn.encode(space), [0]).model
            >>> copy = pool.materialize(space, [0])
            >>> bool((copy[0].weight == shared[0].weight).all()), copy[0].weight is shared[0].weight
            (True, False)
        """
        codec = self.bind(space)
        model = self.build(codec, tokens, batch_norm=batch_norm, grow=False).model
        copies: dict[int, torch.Tensor] = {}
        for _, module in _modules_of(model):
            for name, tensor, is_param in _own(module):
                if id(tensor) not in copies:
                    data = tensor.detach().clone()
                    copies[id(tensor)] = (
                        nn.Parameter(data, requires_grad=tensor.requires_grad) if is_param else data
                    )
                _put(module, name, copies[id(tensor)], is_param)
        return model

    # ------------------------------------------------------------------ persistence

    def state_dict(self) -> dict[str, Any]:
        """The pool as plain values and CPU tensors (``torch.load(weights_only=True)``)."""
        return {
            "format": _FORMAT,
            "fingerprint": self.fingerprint,
            "entries": {
                key: {
                    name: {
                        "tensor": t.detach().cpu(),
                        "parameter": isinstance(t, nn.Parameter),
                        "requires_grad": bool(t.requires_grad),
                    }
                    for name, t in entry.items()
                }
                for key, entry in self._entries.items()
            },
            "training": self.training,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replaces the pool's contents with a :meth:`state_dict` (new tensor objects).

        Raises:
            ValueError: If ``state`` is not a pool's state.
        """
        if not isinstance(state, Mapping) or state.get("format") != _FORMAT:
            raise ValueError(
                f"`state` must be a ParameterPool state of format {_FORMAT}, but got "
                + (f"format {state.get('format')!r}" if isinstance(state, Mapping) else repr(state))
            )
        entries: dict[str, dict[str, torch.Tensor]] = {}
        for key, entry in state["entries"].items():
            entries[key] = {}
            for name, item in entry.items():
                data = item["tensor"].to(self.device)
                entries[key][name] = (
                    nn.Parameter(data, requires_grad=item["requires_grad"])
                    if item["parameter"]
                    else data
                )
        self._entries = entries
        self.optimizer = None  # it held the replaced tensors
        self.fingerprint = state.get("fingerprint")
        self.training = dict(state.get("training") or {})

    def save(self, file: str | os.PathLike[str]) -> None:
        """Writes the pool to ``file`` atomically (``torch.save``; tensors on the CPU)."""
        path = pathlib.Path(file)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(self.state_dict(), f)
            os.replace(tmp, path)
        except BaseException:
            pathlib.Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(
        cls, file: str | os.PathLike[str], device: str | torch.device = "cpu"
    ) -> ParameterPool:
        """A pool saved by :meth:`save` (loaded with ``weights_only=True``: no code runs)."""
        pool = cls(device)
        pool.load_state_dict(torch.load(file, map_location="cpu", weights_only=True))
        return pool


def shares_modules(codec: Codec, *, samples: int = 8, seed: int = 0) -> bool:
    """Whether two different children of the space hold a module with the same pool key
    (checked on up to ``samples`` random children built on the meta device; True when
    it cannot tell: a space of one child, or children that cannot be built on meta).

    Example:
        >>> import torch.nn as nn, symbolic_nas as sn
        >>> Seq, Linear = sn.symbolize(nn.Sequential), sn.symbolize(nn.Linear)
        >>> shares_modules(sn.encode(Seq(Linear(2, 4), Linear(4, sn.oneof([2, 3])))))
        True
        >>> shares_modules(sn.encode(sn.oneof([nn.Linear(2, 3), nn.Conv1d(2, 3, 1)])))
        False
    """
    rng = random.Random(seed)
    children: dict[tuple[int, ...], set[str]] = {}
    for _ in range(samples * 4):
        if len(children) >= samples:
            break
        tokens = tuple(codec.random_tokens(rng))
        if tokens in children:
            continue
        try:
            with on_meta():
                model = codec.materialize(list(tokens))
        except Exception:
            return True
        children[tokens] = {
            module_key(path, m, [(n, t) for n, t, _ in _own(m)])
            for path, m in _modules_of(model)
            if _own(m)
        }
    if len(children) < 2:
        return True
    keys = list(children.values())
    return any(keys[i] & keys[j] for i in range(len(keys)) for j in range(i + 1, len(keys)))
