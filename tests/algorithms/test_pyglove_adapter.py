"""``pg.sample`` interop: materialised modules, and plain dict/list spaces."""

from __future__ import annotations

import pyglove as pg
import pytest
import torch.nn as nn

import symbolic_nas as sn
from symbolic_nas import algorithms

Linear = sn.symbolize(nn.Linear)


def _space():
    return {"layer": Linear(4, sn.oneof([2, 3, 5])), "act": sn.oneof(["relu", "tanh"])}


@pytest.mark.parametrize("name", ["random", "evolution"])
def test_sample_yields_materialised_modules(name):
    gen = algorithms.get(name, seed=0).as_dna_generator(space=Linear(4, sn.oneof([2, 3, 5])))
    models = []
    for model, feedback in gen.sample(num_examples=6):
        assert isinstance(model, nn.Linear)  # a real module, not PyGlove's symbolic record
        models.append(model)
        feedback(float(model.out_features))
    assert gen.algorithm.num_feedback == 6
    assert len({id(m.weight) for m in models}) == 6  # fresh parameters every time


@pytest.mark.parametrize(
    "space",
    [
        _space(),
        [sn.oneof([3, 5]), Linear(4, sn.oneof([2, 3]))],
        (sn.oneof([3, 5]), Linear(4, sn.oneof([2, 3]))),
    ],
    ids=["dict", "list", "tuple"],
)
def test_plain_dict_and_list_spaces_work_like_pg_dict_and_list(space):
    gen = algorithms.get("evolution", seed=0).as_dna_generator(space=space)
    assert isinstance(gen.space, pg.Symbolic)
    if not isinstance(space, tuple):
        assert isinstance(gen.space, pg.Dict if isinstance(space, dict) else pg.List)
    for value, feedback in gen.sample(num_examples=3):
        assert type(value) is type(space)
        layer = value["layer"] if isinstance(value, dict) else value[1]
        assert isinstance(layer, nn.Linear)
        feedback(1.0)
    gen = algorithms.get("random", seed=0).as_dna_generator(space=space)
    for value, feedback in pg.sample(gen.space, gen, num_examples=3):  # PyGlove's own call
        assert isinstance(value, pg.Symbolic)  # PyGlove decodes symbolic records
        built = gen.materialize(feedback.dna)  # the one call from a sample to its object
        assert type(built) is type(space)
        assert sn.encode(space).to_tokens(feedback.dna) == gen.algorithm.outstanding[-1].tokens
        feedback(0.5)
    assert gen.algorithm.num_feedback == 3


def test_materialize_accepts_any_dna_of_the_space():
    space = _space()
    gen = algorithms.get("random", seed=0).as_dna_generator(space=space)
    for _, feedback in gen.sample(num_examples=1):
        feedback(1.0)
    dna = sn.encode(space).from_tokens([2, 1])  # never proposed: decoded from the DNA
    built = gen.materialize(dna)
    assert built["layer"].out_features == 5 and built["act"] == "tanh"


def test_a_spec_only_generator_cannot_build_objects():
    gen = algorithms.get("random", seed=0).as_dna_generator()
    with pytest.raises(ValueError, match=r"`space` must be given to as_dna_generator"):
        next(gen.sample(num_examples=1))
    with pytest.raises(ValueError, match=r"`space` must be given to as_dna_generator"):
        gen.materialize(pg.DNA(0))
    gen = algorithms.get("random", seed=0).as_dna_generator(space=_space())
    with pytest.raises(TypeError, match=r"`dna` must be a pg.DNA"):
        gen.materialize([0, 1])
    with pytest.raises(ValueError, match=r"`where` must not be given"):
        next(gen.sample(num_examples=1, where=lambda x: True))
