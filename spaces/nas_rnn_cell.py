"""The recurrent-cell search space of Zoph & Le (2017), written as annotated PyTorch code.

Barret Zoph and Quoc V. Le, "Neural Architecture Search with Reinforcement
Learning", ICLR 2017, Section 3.4 and Appendix A (Figure 5).

A cell is a full binary tree of nodes computed at each time step. Each of its
``base`` leaves combines a projection of the input ``x_t`` with a projection of
the previous hidden state ``h_{t-1}``; each inner node combines the outputs of
its two children and has no parameters. At every node the controller chooses
a combination (``add`` or ``elem_mult``) and an activation (``tanh``, ``relu``,
``sigmoid`` or ``identity``). The paper's PTB cell has base 8 (8 leaves, 15
nodes; the default here) and its worked example base 2 (3 nodes).

The cell state takes two more choices ("cell indices") and one more
combination and activation ("cell inject"): ``inject_into`` names the node
whose output ``a_k`` is replaced by ``inject_activation(a_k <inject_combination>
c_{t-1})`` before its parent reads it, and ``cell_from`` names the node whose
output *before its activation* becomes the new cell state ``c_t``. The root's
output is the new hidden state ``h_t``.

Nodes are numbered like the paper's tree indices: leaves ``0 .. base-1``, then the
inner nodes level by level (for base 2, node 2 is the root over nodes 0 and 1).
Decisions come in that order (combination, activation per node), then the
cell-inject combination and activation, then ``cell_from`` and ``inject_into``.
Combinations and activations share one controller head each
(``hints={"share": "combination"}`` / ``"activation"``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
from torch import nn

from symbolic_nas import space as sn
from symbolic_nas.validation import Interval, Options, check, parameter_error, validates

from ._constraints import POSITIVE_INT
from .examples import Example, register_example
from .registry import register

__all__ = ["ACTIVATIONS", "COMBINATIONS", "Leaf", "NASRNNCell", "Node", "nas_rnn_cell"]

COMBINATIONS = ("add", "elem_mult")
ACTIVATIONS = ("tanh", "relu", "sigmoid", "identity")

_ACTIVATION_FNS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "identity": lambda x: x,
}


#: The constraints of :func:`nas_rnn_cell`'s arguments.
PARAMETER_CONSTRAINTS: dict[str, list[Any]] = {
    "base": [Interval(int, 2, None)],
    "input_size": [POSITIVE_INT],
    "hidden_size": [POSITIVE_INT],
}


def _check_op(combination: str, activation: str) -> None:
    check("combination", combination, [Options(COMBINATIONS)])
    check("activation", activation, [Options(ACTIVATIONS)])


def _combine(combination: str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a + b if combination == "add" else a * b


@sn.symbolize
class Node(nn.Module):
    """An inner tree node (also the cell inject): ``act(a <combination> b)``, no parameters.

    ``forward(a, b)`` returns ``(pre_activation, output)``, both shaped like ``a``.

    Example:
        >>> import torch
        >>> pre, out = Node("elem_mult", "relu")(torch.full((1, 2), -2.0), torch.ones(1, 2))
        >>> pre.tolist(), out.tolist()
        ([[-2.0, -2.0]], [[0.0, 0.0]])
    """

    def __init__(self, combination: str, activation: str):
        super().__init__()
        _check_op(combination, activation)
        self.combination = combination
        self.activation = activation

    def extra_repr(self) -> str:
        return f"{self.combination}, {self.activation}"

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pre = _combine(self.combination, a, b)
        return pre, _ACTIVATION_FNS[self.activation](pre)


@sn.symbolize
class Leaf(nn.Module):
    """A leaf: ``act(W x_t <combination> U h_{t-1})`` (``W`` with a bias, ``U`` without).

    ``forward(x, h)``: ``x`` is ``[B, input_size]``, ``h`` is ``[B, hidden_size]``; it
    returns ``(pre_activation, output)``, both ``[B, hidden_size]``.

    Example:
        >>> import torch
        >>> leaf = Leaf(4, 8, "add", "tanh")
        >>> [t.shape for t in leaf(torch.zeros(2, 4), torch.zeros(2, 8))]
        [torch.Size([2, 8]), torch.Size([2, 8])]
    """

    def __init__(self, input_size: int, hidden_size: int, combination: str, activation: str):
        super().__init__()
        _check_op(combination, activation)
        self.combination = combination
        self.activation = activation
        self.w_x = nn.Linear(input_size, hidden_size)
        self.w_h = nn.Linear(hidden_size, hidden_size, bias=False)

    def extra_repr(self) -> str:
        return f"{self.combination}, {self.activation}"

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pre = _combine(self.combination, self.w_x(x), self.w_h(h))
        return pre, _ACTIVATION_FNS[self.activation](pre)


@sn.symbolize
class NASRNNCell(nn.Module):
    """A Zoph & Le (2017) recurrent cell: a binary tree of leaves and nodes with a cell state.

    ``forward(x, state=None) -> (h_t, (h_t, c_t))``: ``x`` is ``[B, input_size]``,
    ``state`` is ``(h_{t-1}, c_{t-1})``, each ``[B, hidden_size]`` (zeros when None),
    like ``nn.LSTMCell`` but returning the output first so cells chain as
    ``out, state = cell(x_t, state)``.

    Args:
        leaves: ``base`` :class:`Leaf` modules (tree indices ``0 .. base-1``).
        nodes: ``base - 1`` :class:`Node` modules, the inner nodes level by level.
        inject: The :class:`Node` combining ``c_{t-1}`` into node ``inject_into``.
        cell_from: Tree index whose pre-activation becomes ``c_t``.
        inject_into: Tree index whose output is combined with ``c_{t-1}``.

    Example:
        >>> import torch
        >>> cell = NASRNNCell(
        ...     [Leaf(4, 8, "add", "tanh"), Leaf(4, 8, "elem_mult", "relu")],
        ...     [Node("elem_mult", "sigmoid")], Node("add", "relu"), cell_from=1, inject_into=0)
        >>> out, (h, c) = cell(torch.zeros(3, 4))
        >>> out.shape, c.shape
        (torch.Size([3, 8]), torch.Size([3, 8]))
    """

    def __init__(
        self,
        leaves: Sequence[Leaf],
        nodes: Sequence[Node],
        inject: Node,
        cell_from: int,
        inject_into: int,
    ):
        super().__init__()
        base = len(leaves)
        if base < 2 or base & (base - 1):
            raise ValueError(f"`leaves` must hold a power of two >= 2 leaves, but got {base}")
        if len(nodes) != base - 1:
            raise ValueError(
                f"`nodes` must hold {base - 1} nodes for {base} leaves, but got {len(nodes)}"
            )
        num_nodes = 2 * base - 1
        index = [Interval(int, 0, num_nodes, closed="left")]
        check("cell_from", cell_from, index)
        check("inject_into", inject_into, index)
        self.leaves = nn.ModuleList(leaves)
        self.nodes = nn.ModuleList(nodes)
        self.inject = inject
        self.cell_from = cell_from
        self.inject_into = inject_into
        self.hidden_size = leaves[0].w_h.in_features
        # children[k] = the two tree indices inner node base + k reads.
        self.children_of: tuple[tuple[int, int], ...] = tuple(
            (2 * k, 2 * k + 1) for k in range(base - 1)
        )

    def extra_repr(self) -> str:
        return f"cell_from={self.cell_from}, inject_into={self.inject_into}"

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            state = (zeros, zeros)
        h, c = state
        pres: list[torch.Tensor] = []
        outs: list[torch.Tensor] = []

        def add(pre: torch.Tensor, out: torch.Tensor) -> None:
            if len(outs) == self.inject_into:
                out = self.inject(out, c)[1]
            pres.append(pre)
            outs.append(out)

        for leaf in self.leaves:
            add(*leaf(x, h))
        for node, (left, right) in zip(self.nodes, self.children_of):
            add(*node(outs[left], outs[right]))
        h_new = outs[-1]
        return h_new, (h_new, pres[self.cell_from])


@register("nas_rnn_cell")
@validates(PARAMETER_CONSTRAINTS)
def nas_rnn_cell(*, base: int = 8, input_size: int = 16, hidden_size: int = 32) -> sn.Call:
    """The Zoph & Le (2017) recurrent-cell space with ``base`` leaves.

    Decisions: ``2 * (2 * base - 1)`` for the nodes, 2 for the cell inject and 2 cell
    indices (34 for base 8, 10 for base 2).

    Args:
        base: Number of leaves, a power of two (the paper's PTB cell: 8).
        input_size: Features of ``x_t``.
        hidden_size: Features of ``h_t`` and ``c_t``.

    Returns:
        A symbolic ``NASRNNCell(...)`` call: a space to encode and materialise.

    Example:
        >>> import random, torch, symbolic_nas as sn
        >>> codec = sn.encode(nas_rnn_cell(base=2, input_size=4, hidden_size=8))
        >>> codec.num_decisions
        10
        >>> cell = codec.materialize(codec.random_tokens(random.Random(0)))
        >>> out, (h, c) = cell(torch.zeros(3, 4))
        >>> out.shape
        torch.Size([3, 8])
    """
    if base & (base - 1):
        raise parameter_error("base", "a power of two >= 2", base)

    def combination() -> str:
        return sn.oneof(list(COMBINATIONS), hints={"share": "combination"})

    def activation() -> str:
        return sn.oneof(list(ACTIVATIONS), hints={"share": "activation"})

    num_nodes = 2 * base - 1
    cell = NASRNNCell(
        leaves=[Leaf(input_size, hidden_size, combination(), activation()) for _ in range(base)],
        nodes=[Node(combination(), activation()) for _ in range(base - 1)],
        inject=Node(combination(), activation()),
        cell_from=sn.oneof(list(range(num_nodes)), hints={"share": "cell_index"}),
        inject_into=sn.oneof(list(range(num_nodes)), hints={"share": "cell_index"}),
    )
    # The space is a symbolic call; type checkers see the cell it stands for.
    return cast(sn.Call, cell)


@register_example("nas_rnn_cell")
def _example(*, input_size: int = 16, hidden_size: int = 32, **_: object) -> Example:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, input_size, generator=generator)
    h = torch.randn(2, hidden_size, generator=generator)
    c = torch.randn(2, hidden_size, generator=generator)
    shape = (2, hidden_size)
    return Example(inputs=(x, (h, c)), output_shape=(shape, (shape, shape)))
