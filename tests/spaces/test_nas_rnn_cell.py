"""The Zoph & Le (2017) recurrent-cell space: the tree, the cell inject, training."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import symbolic_nas as sn
from symbolic_nas import spaces
from symbolic_nas.spaces.nas_rnn_cell import Leaf, NASRNNCell, Node, nas_rnn_cell

# The paper's worked example (Appendix A, Figure 5), base 2, in decision order:
# node 0 add/tanh, node 1 elem_mult/relu, node 2 elem_mult/sigmoid, inject add/relu,
# cell_from = 1, inject_into = 0.
PAPER_EXAMPLE = [0, 0, 1, 1, 1, 2, 0, 1, 1, 0]


@pytest.fixture(scope="module")
def codec() -> sn.Codec:
    return sn.encode(nas_rnn_cell(base=2, input_size=4, hidden_size=8))


def test_decisions(codec: sn.Codec) -> None:
    assert codec.num_decisions == 10
    assert sn.encode(spaces.get("nas_rnn_cell")).num_decisions == 2 * 15 + 2 + 2
    d = codec.decisions
    assert d[0].values == ("add", "elem_mult")
    assert d[1].values == ("tanh", "relu", "sigmoid", "identity")
    assert {x.share_key for x in d[:8:2]} == {"combination"}
    assert {x.share_key for x in d[1:8:2]} == {"activation"}
    assert [x.values for x in d[8:]] == [(0, 1, 2), (0, 1, 2)]


def test_paper_example_computes_the_paper_formulas(codec: sn.Codec) -> None:
    cell = codec.materialize(PAPER_EXAMPLE)
    assert isinstance(cell, NASRNNCell)
    assert (cell.cell_from, cell.inject_into) == (1, 0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 4, generator=g)
    h, c = torch.randn(2, 3, 8, generator=g)
    out, (h_new, c_new) = cell(x, (h, c))
    leaf0, leaf1 = cell.leaves
    a0 = torch.tanh(leaf0.w_x(x) + leaf0.w_h(h))
    a1 = torch.relu(leaf1.w_x(x) * leaf1.w_h(h))
    a0_new = torch.relu(a0 + c)
    assert torch.allclose(out, torch.sigmoid(a0_new * a1))
    assert torch.allclose(h_new, out)
    assert torch.allclose(c_new, leaf1.w_x(x) * leaf1.w_h(h))  # node 1 before activation


def test_tree_of_base_4_wires_children_level_by_level() -> None:
    leaves = [Leaf(2, 3, "add", "identity") for _ in range(4)]
    nodes = [Node("add", "identity") for _ in range(3)]
    cell = NASRNNCell(leaves, nodes, Node("add", "identity"), cell_from=6, inject_into=5)
    assert cell.children_of == ((0, 1), (2, 3), (4, 5))
    x, h, c = torch.randn(1, 2), torch.randn(1, 3), torch.randn(1, 3)
    out, (_, c_new) = cell(x, (h, c))
    leaf_sum = sum(leaf.w_x(x) + leaf.w_h(h) for leaf in leaves)
    assert torch.allclose(out, leaf_sum + c)  # identity everywhere; c injected into node 5
    assert torch.allclose(c_new, leaf_sum + c)  # node 6's pre-activation


def test_zero_state_by_default(codec: sn.Codec) -> None:
    cell = codec.materialize(PAPER_EXAMPLE)
    x = torch.randn(2, 4)
    zeros = torch.zeros(2, 8)
    assert torch.allclose(cell(x)[0], cell(x, (zeros, zeros))[0])


def _copy_task(steps: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    xs = torch.randn(steps, 32, 4, generator=generator)
    targets = torch.cat([torch.zeros(1, 32), xs[:-1, :, 0]])  # y_t = x_{t-1}[0]
    return xs, targets


@pytest.mark.parametrize("tokens", [PAPER_EXAMPLE, [0, 0, 0, 0, 0, 0, 0, 0, 2, 2]])
def test_cell_trains_on_a_sequence_task(codec: sn.Codec, tokens: list[int]) -> None:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        cell = codec.materialize(tokens)
        readout = nn.Linear(8, 1)
    params = [*cell.parameters(), *readout.parameters()]
    optimizer = torch.optim.Adam(params, lr=0.03)
    xs, targets = _copy_task(10, torch.Generator().manual_seed(0))

    def loss_fn() -> torch.Tensor:
        state, outputs = None, []
        for x in xs:
            out, state = cell(x, state)
            outputs.append(readout(out)[:, 0])
        return nn.functional.mse_loss(torch.stack(outputs), targets)

    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::10]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base": 3}, r"`base` must be a power of two >= 2, but got 3"),
        ({"base": 1}, r"`base` must be an int >= 2, but got 1"),
        ({"hidden_size": 0}, r"`hidden_size` must be an int >= 1, but got 0"),
    ],
)
def test_bad_arguments_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        spaces.get("nas_rnn_cell", **kwargs)


def test_bad_modules_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"`combination` must be one of \('add', 'elem_mult'\)"):
        Node("max", "tanh")
    leaves = [Leaf(2, 3, "add", "tanh") for _ in range(2)]
    with pytest.raises(ValueError, match=r"`cell_from` must be an int in \[0, 3\), but got 3"):
        NASRNNCell(leaves, [Node("add", "tanh")], Node("add", "tanh"), cell_from=3, inject_into=0)
    with pytest.raises(ValueError, match="`nodes` must hold 1 nodes for 2 leaves, but got 0"):
        NASRNNCell(leaves, [], Node("add", "tanh"), cell_from=0, inject_into=0)
