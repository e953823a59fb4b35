"""symbolize: the decorated class stays the class; placeholders make symbolic calls."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn

import symbolic_nas as sn
from symbolic_nas.space.symbolic import Call, has_placeholder, provenance
from tests.helpers.models import Block, Chain, Net, conv_bn


def test_concrete_arguments_build_a_real_module_of_the_same_class():
    block = Block(1, 4, 3, "relu")
    assert type(block) is Block
    assert isinstance(block.conv, nn.Conv2d)
    assert block(torch.zeros(1, 1, 5, 5)).shape == (1, 4, 5, 5)


@pytest.mark.parametrize(
    "kernel",
    [
        sn.oneof([3, 5]),
        [3, sn.oneof([3, 5])],
        (sn.oneof([3, 5]), 3),
        {"k": sn.oneof([3, 5])},
    ],
)
def test_a_placeholder_anywhere_in_the_arguments_makes_a_symbolic_call(kernel):
    call = Block(1, 4, kernel, "relu")
    assert isinstance(call, Call)
    assert call.fn is Block
    assert set(call.arguments()) == {"cin", "cout", "kernel", "act"}
    assert len(sn.encode(call).decisions) == 1


def test_tuple_arguments_are_rebuilt_as_tuples():
    layer = sn.symbolize(nn.Conv2d)(1, 2, (sn.oneof([1, 3]), 3))
    conv = sn.materialize(layer, [1])
    assert type(conv) is nn.Conv2d
    assert conv.kernel_size == (3, 3)


def test_decision_ids_use_parameter_names():
    space = Net([Block(1, 8, sn.oneof([3, 5]), "relu")], 8)
    assert [d.id for d in sn.encode(space).decisions] == ["blocks[0].kernel"]


def test_published_classes_are_not_modified():
    new_before, init_before = nn.Conv2d.__new__, nn.Conv2d.__init__
    conv = sn.symbolize(nn.Conv2d)
    assert nn.Conv2d.__new__ is new_before and nn.Conv2d.__init__ is init_before
    built = conv(1, 2, 3)
    assert type(built) is nn.Conv2d
    assert provenance(built).args == (1, 2, 3)
    assert provenance(nn.Conv2d(1, 2, 3)) is None  # plain construction is untouched


def test_function_returning_a_module():
    concrete = conv_bn(1, 4, 3)
    assert isinstance(concrete, nn.Sequential)
    space = conv_bn(1, sn.oneof([4, 8]), 3)
    assert isinstance(space, Call)
    model = sn.materialize(space, [1])
    assert model[1].num_features == 8


def test_var_positional_arguments_round_trip():
    space = Chain(nn.Linear(2, 2), sn.oneof([nn.ReLU(), nn.Tanh()]), scale=2.0)
    model = sn.materialize(space, [1])
    assert isinstance(model.layers[1], nn.Tanh)
    assert model.scale == 2.0


def test_symbolize_is_idempotent_and_keeps_pickling():
    assert sn.symbolize(Block) is Block
    block = Block(1, 2, 3, "gelu")
    clone = pickle.loads(pickle.dumps(block))
    assert type(clone) is Block
    assert torch.equal(clone.conv.weight, block.conv.weight)


def test_copies_carry_no_provenance():
    import copy

    block = Block(1, 2, 3, "relu")
    assert provenance(block).args == (1, 2, 3, "relu")
    assert provenance(copy.deepcopy(block)) is None
    assert provenance(pickle.loads(pickle.dumps(block))) is None


@pytest.mark.parametrize(
    ("obj", "pattern"),
    [
        (nn.Linear(2, 2), r"but got a module instance \(Linear\); use sn.annotate"),
        (42, r"`obj` of symbolize must be an nn.Module subclass or a function"),
        ("Block", r"`obj` of symbolize must be an nn.Module subclass or a function"),
    ],
)
def test_objects_that_cannot_be_symbolized(obj, pattern):
    with pytest.raises(TypeError, match=pattern):
        sn.symbolize(obj)


def test_wrong_arguments_fail_at_space_definition():
    with pytest.raises(TypeError, match=r"Block\(...\) got invalid arguments"):
        Block(1, 2, sn.oneof([3, 5]))  # `act` missing


def test_has_placeholder_does_not_look_into_modules():
    assert not has_placeholder([nn.Linear(2, 2), (1, "a"), {"k": 3}])
    assert has_placeholder({"k": [1, (2, sn.floatv(0.1, 0.2))]})


def test_dict_keys_inside_spaces_must_be_strings():
    with pytest.raises(TypeError, match=r"dict keys inside a search space must be str, but got 1"):
        Block(1, 2, {1: sn.oneof([3, 5])}, "relu")


def test_space_repr_reads_like_code():
    space = Net([Block(1, 16, 3, "relu"), Block(16, 8, sn.oneof([3, 5]), "relu")], 8)
    assert space.format() == (
        "Net(blocks=[Block(1, 16, 3, 'relu'), "
        "Block(cin=16, cout=8, kernel=oneof([3, 5]), act='relu')], width=8)"
    )


def test_releasing_chains_of_built_modules_does_not_deadlock():
    # Regression: a weakref callback released the last reference to another recorded
    # module (an argument that was consumed, not kept) while holding the provenance
    # lock, and the nested callback deadlocked at garbage collection.
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import gc, torch.nn as nn, symbolic_nas as sn
        Linear = sn.symbolize(nn.Linear)

        class Holder(nn.Module):
            def __init__(self, spec):
                super().__init__()
                self.n = getattr(spec, "in_features", 1)  # consumes `spec`, keeps no reference

        Holder = sn.symbolize(Holder)
        for _ in range(3):
            held = Holder(Holder(Holder(Linear(2, 2))))
            del held
            gc.collect()
        print("done")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "done" in out.stdout, out.stderr


def test_factories_of_published_classes_pickle_with_spaces_and_modules():
    conv = sn.symbolize(nn.Conv2d)
    space = conv(1, sn.oneof([2, 4]), 3)
    restored = pickle.loads(pickle.dumps(space))
    assert sn.materialize(restored, [1]).out_channels == 4
    assert type(pickle.loads(pickle.dumps(conv(1, 2, 3)))) is nn.Conv2d
    assert repr(conv) == "sn.symbolize(torch.nn.modules.conv.Conv2d)"
