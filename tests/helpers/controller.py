"""Shared helpers of the controller, reinforce and ppo tests: spaces and oracles."""

from __future__ import annotations

import copy
import math

import pyglove as pg
import torch

import symbolic_nas as sn
from symbolic_nas.algorithms.controller import Controller


def toy_space():
    """Three decisions of three tokens each (27 architectures)."""
    return [sn.oneof(["a", "b", "c"]) for _ in range(3)]


def conditional_space():
    """A conditional space: the second decision depends on the first."""
    return pg.Dict(
        op=sn.oneof(
            [
                pg.Dict(conv=pg.Dict(k=sn.oneof([1, 3, 5]), f=sn.oneof([8, 16]))),
                pg.Dict(pool=sn.oneof([2, 3])),
            ]
        ),
        act=sn.oneof(["relu", "tanh"]),
    )


def skip_space():
    """Zoph & Le-style layers: shared kernel heads and anchored skip connections.

    Layer 0 has no skip group of its own, so source 0 has no anchor (fallback);
    the last group is an exact-2 anchor ``manyof``.
    """
    layers: list = [pg.Dict(k=sn.oneof([1, 3], hints={"share": "k"}))]
    for i in range(1, 3):
        layers.append(
            pg.Dict(
                inputs=sn.subset(list(range(i)), anchor=i),
                k=sn.oneof([1, 3], hints={"share": "k"}),
            )
        )
    layers.append(pg.Dict(out=sn.manyof(2, [0, 1, 2], sorted=True, hints={"anchor": 3})))
    return pg.List(layers)


def group_space():
    """Distinct/sorted picks, a permutation and a plain subset (no anchor)."""
    return pg.Dict(
        picks=sn.manyof(2, ["a", "b", "c"], sorted=True),
        perm=sn.permutate(["x", "y", "z"]),
        sub=sn.subset(["p", "q"]),
    )


ALL_SPACES = {
    "toy": toy_space,
    "conditional": conditional_space,
    "skip": skip_space,
    "groups": group_space,
}


def reference_log_prob(net: Controller, tokens: list[int]) -> float:
    """The log-probability of ``tokens``, recomputed one step at a time (float64).

    An independent, unbatched implementation of the paper's controller: the LSTM
    runs one step per token on the previous token's embedding; categorical
    decisions use their head; an anchored skip member is chosen with probability
    sigmoid(vᵀ tanh(W_prev h_source + W_curr h_anchor)) (a true sigmoid), with
    h_source the stored anchor of an earlier group or the source's fallback.
    """
    codec = net.codec
    walker = codec.walker()
    lstm = copy.deepcopy(net.lstm).double()
    with torch.no_grad():
        x = net.start.double()
        state = None
        stored: dict = {}
        anchor_h = None
        total = 0.0
        for token in tokens:
            d = codec.decisions[walker.decision]
            out, state = lstm(x.unsqueeze(0), state)
            h = out[0, 0]
            if d.kind == "subset" and d.anchor is not None:
                if d.group_index == 0:
                    anchor_h = h
                if d.source in stored:
                    source_h = stored[d.source]
                else:
                    source_h = net.fallback[net._slots[d.source]].double()
                q = (
                    torch.tanh(net.w_prev.double() @ source_h + net.w_curr.double() @ anchor_h)
                    @ net.v.double()
                )
                q = _shape(net, q)
                p1 = torch.sigmoid(q)
                probs = torch.stack([1 - p1, p1])
                if d.group_index == d.group_size - 1:
                    stored[d.anchor] = anchor_h
            else:
                head = int(net._head_of[d.index])
                weight = net.head_weight[head, : d.vocab_size].double()
                bias = net.head_bias[head, : d.vocab_size].double()
                probs = torch.softmax(_shape(net, weight @ h + bias), 0)
            mask = torch.from_numpy(walker.mask().copy())
            probs = torch.where(mask, probs, 0.0)
            total += math.log(float(probs[token] / probs.sum()))
            x = net.embedding[int(net._emb_offset[d.index]) + token].double().unsqueeze(0)
            walker.push(token)
    return total


def _shape(net: Controller, logits: torch.Tensor) -> torch.Tensor:
    logits = logits / net.temperature
    if net.tanh_constant > 0:
        logits = net.tanh_constant * torch.tanh(logits)
    return logits
