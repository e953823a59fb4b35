"""Materialised models behave as plain PyTorch modules."""

from __future__ import annotations

import copy
import io
import random

import numpy as np
import pyglove as pg
import pytest
import torch
from torch import nn

import symbolic_nas as sn
from tests.helpers.models import Block, Net, issue_space


def test_issue_example_runs_as_written():
    space = issue_space()
    codec = sn.encode(space)
    tokens = codec.random_tokens(random.Random(0))
    dna = codec.from_tokens(tokens)
    assert codec.to_tokens(dna) == tokens
    model = sn.materialize(space, dna)
    assert isinstance(model, Net)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize("tokens", [[1, 2], (1, 2), np.array([1, 2])])
def test_tokens_may_be_any_int_sequence(tokens):
    model = sn.materialize(issue_space(), tokens)
    assert model.blocks[1].conv.kernel_size == (7, 7)


def test_materialize_accepts_a_codec():
    codec = sn.encode(issue_space())
    assert isinstance(sn.materialize(codec, [0, 1, 1]).blocks[0].act, nn.GELU)


def test_each_materialization_has_fresh_parameters_also_for_constant_submodules():
    codec = sn.encode(issue_space())
    a, b = codec.materialize([1, 0]), codec.materialize([1, 0])
    pa = dict(a.named_parameters())
    pb = dict(b.named_parameters())
    assert pa.keys() == pb.keys()
    for name in pa:
        assert pa[name].data_ptr() != pb[name].data_ptr(), name
    # Block(1, 16, 3, "relu") is a constant written in the space: rebuilt, re-initialised.
    assert not torch.equal(a.blocks[0].conv.weight, b.blocks[0].conv.weight)


def test_plain_module_candidates_are_copied_per_materialization():
    shared = nn.Linear(3, 3)
    space = sn.oneof([shared, nn.Identity()])
    a, b = sn.materialize(space, [0]), sn.materialize(space, [0])
    assert a is not shared and b is not shared and a is not b
    assert a.weight.data_ptr() != shared.weight.data_ptr() != b.weight.data_ptr()
    assert torch.equal(a.weight, shared.weight)  # copies keep the given weights


def test_deepcopy_keeps_weights():
    model = sn.materialize(issue_space(), [1, 1])
    clone = copy.deepcopy(model)
    for (name, p), (_, q) in zip(model.named_parameters(), clone.named_parameters()):
        assert torch.equal(p, q), name
        assert p.data_ptr() != q.data_ptr()


def test_torch_save_and_load_of_the_whole_module():
    model = sn.materialize(issue_space(), [0, 1, 1])
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert type(loaded) is Net
    x = torch.randn(2, 1, 12, 12)
    assert torch.equal(loaded(x), model(x))


def test_state_dict_round_trip_and_to_device():
    codec = sn.encode(issue_space())
    model, other = codec.materialize([1, 2]), codec.materialize([1, 2])
    other.load_state_dict(model.state_dict())
    x = torch.randn(1, 1, 10, 10)
    assert torch.equal(other(x), model(x))
    moved = model.to("cpu", dtype=torch.float64)
    assert moved.head.weight.dtype == torch.float64


def test_torch_jit_script_works_for_scriptable_user_code():
    model = sn.materialize(issue_space(), [1, 0])
    scripted = torch.jit.script(model)
    x = torch.randn(2, 1, 8, 8)
    assert torch.allclose(scripted(x), model(x))


def test_torch_compile_works():
    model = sn.materialize(issue_space(), [0, 0, 0])
    compiled = torch.compile(model, backend="aot_eager")
    x = torch.randn(2, 1, 8, 8)
    assert torch.allclose(compiled(x), model(x), atol=1e-6)


def test_pyglove_dict_space_materializes_plain_containers_like_pg_materialize():
    space = pg.Dict(
        a=sn.oneof([1, pg.Dict(x=sn.oneof(["p", "q"]), y=[sn.intv(1, 3), 4])]),
        b=sn.manyof(2, ["u", "v", "w"], sorted=True),
    )
    codec = sn.encode(space)
    for tokens in ([0, 0, 1], [1, 1, 2, 1, 2]):
        ours = codec.materialize(tokens)
        theirs = pg.materialize(space, codec.from_tokens(tokens))
        assert ours == theirs.sym_jsonify()
        assert type(ours) is dict


def test_invalid_tokens_are_rejected_before_building():
    with pytest.raises(ValueError, match=r"token at position 1 must be in \[0, 3\)"):
        sn.materialize(issue_space(), [1, 3])


@pytest.mark.parametrize("bad", ["12", 1.5, [1.0, 2.0], np.zeros((2, 2), dtype=int)])
def test_bad_dna_argument(bad):
    with pytest.raises((TypeError, ValueError), match=r"dna|token"):
        sn.materialize(issue_space(), bad)


def test_block_used_directly_as_a_space():
    space = Block(1, 4, sn.oneof([1, 3]), sn.oneof(["relu", "gelu"]))
    model = sn.materialize(space, [1, 1])
    assert type(model) is Block and isinstance(model.act, nn.GELU)
