"""symbolic_nas.validation, and every public constructor checked against its own declaration.

The second half is generated: for each public constructor (every registered
algorithm and space, ``sn.Trainer``, ``sn.search``'s keyword options and a few
more), every parameter must be declared, and every invalid value derived from
its declaration must be refused with an ``InvalidParameterError`` that reads
"`<name>` must be …".
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import pathlib
from collections.abc import Callable, Mapping
from typing import Any

import pytest
import torch

import symbolic_nas as sn
from symbolic_nas import algorithms, spaces
from symbolic_nas.review.progress import ProgressCallback
from symbolic_nas.review.tensorboard import TensorBoardCallback
from symbolic_nas.testing import ToyObjective
from symbolic_nas.training.data.mnist import load_mnist5k
from symbolic_nas.tuner.options import SearchOptions
from symbolic_nas.validation import (
    InstanceOf,
    Interval,
    InvalidParameterError,
    Options,
    Satisfies,
    SequenceOf,
    brief,
    check,
    describe,
    invalid_values,
    make_constraint,
    parameter_error,
    validate_params,
    validates,
)

INF, NAN = math.inf, math.nan

# ---------------------------------------------------------------------- the module


def test_the_error_is_a_value_error_and_a_type_error() -> None:
    with pytest.raises(ValueError):
        check("x", 0, [Interval(int, 1, None)])
    with pytest.raises(TypeError):
        check("x", "1", [Interval(int, 1, None)])


@pytest.mark.parametrize(
    ("interval", "words", "inside", "outside"),
    [
        (Interval(int, 1, None), "an int >= 1", [1, 10**30], [0, 1.0, True, "1", NAN, INF]),
        (Interval(int, 0, 3, closed="left"), "an int in [0, 3)", [0, 2], [-1, 3]),
        (Interval(int, None, None), "an int", [-5, 0], [0.5, False, None]),
        (Interval(float, 0, 1), "a number in [0, 1]", [0, 0.5, 1], [-0.1, 1.1, NAN, True]),
        (Interval(float, 0, 1, closed="right"), "a number in (0, 1]", [1e-9, 1], [0, 1.5]),
        (Interval(float, 0, None), "a number >= 0", [0, 2.5, INF], [-1e-9, NAN, -INF]),
        (Interval(float, 0, None, closed="right"), "a number > 0", [1e-9, INF], [0, NAN]),
        (Interval(float, 0, None, closed="neither"), "a finite number > 0", [3], [0, INF]),
        (Interval(float, 0, None, closed="left"), "a finite number >= 0", [0, 7], [INF, -1]),
        (Interval(float, None, 1, closed="neither"), "a finite number < 1", [0], [-INF, 1]),
        (Interval(float, None, 1), "a number <= 1", [-INF, 1], [1.5, INF]),
        (Interval(float, None, None), "a number", [-INF, 0, INF], [NAN, "0", None]),
        (Interval(float, None, None, closed="neither"), "a finite number", [0], [INF, -INF]),
        (Interval(float, None, None, closed="left"), "a number < inf", [-INF], [INF]),
    ],
)
def test_intervals(interval: Interval, words: str, inside: list, outside: list) -> None:
    assert str(interval) == words
    assert [v for v in inside if not interval.is_satisfied_by(v)] == []
    assert [v for v in outside if interval.is_satisfied_by(v)] == []
    examples = invalid_values([interval])
    assert examples and not any(interval.is_satisfied_by(v) for v in examples)


def test_interval_declarations_are_checked() -> None:
    with pytest.raises(ValueError, match="`kind` must be int or float"):
        Interval(complex, 0, 1)
    with pytest.raises(ValueError, match="`closed` must be one of"):
        Interval(int, 0, 1, closed="open")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`low` must be <= `high` \(1\), but got 2"):
        Interval(int, 2, 1)


def test_options_compare_values_and_types() -> None:
    adam = Options(("adam", "sgd"))
    assert str(adam) == "one of ('adam', 'sgd')" and adam.is_satisfied_by("sgd")
    assert not adam.is_satisfied_by("rmsprop") and not adam.is_satisfied_by(["adam"])
    assert str(Options(["auto"])) == "'auto'" and str(Options(iter([1, 2]))) == "one of [1, 2]"
    flags = Options((True, 0))
    assert not flags.is_satisfied_by(1) and not flags.is_satisfied_by(False)
    assert flags.is_satisfied_by(True) and flags.is_satisfied_by(0)
    with pytest.raises(ValueError, match="`options` must be a non-empty iterable"):
        Options([])


def test_instance_of() -> None:
    assert str(InstanceOf(int)) == "an int" and str(InstanceOf(bool)) == "a bool"
    assert str(InstanceOf((int, str))) == "an int or str"
    assert str(InstanceOf(Mapping, "a mapping")) == "a mapping"
    assert not InstanceOf(int).is_satisfied_by(True) and InstanceOf(int).is_satisfied_by(3)
    assert InstanceOf((bool, int)).is_satisfied_by(True)
    assert InstanceOf(ToyObjective).plural() == "ToyObjective objects"


def test_satisfies_treats_an_exception_as_false() -> None:
    positive = Satisfies(lambda v: v > 0, "a positive thing", invalid=[-1])
    assert positive.is_satisfied_by(2) and not positive.is_satisfied_by(-1)
    assert not positive.is_satisfied_by("x")  # TypeError in the predicate
    assert positive.plural() is None
    assert invalid_values([positive])[0] == -1


def test_sequence_of() -> None:
    ints = SequenceOf(Interval(int, 1, None), min_len=1, distinct=True)
    assert str(ints) == "a non-empty sequence of distinct ints >= 1"
    assert ints.is_satisfied_by([1, 2]) and ints.is_satisfied_by((3,))
    for bad in ([], [1, 1], [0], "12", b"12", {1, 2}, 5, None):
        assert not ints.is_satisfied_by(bad), bad
    pairs = SequenceOf(Satisfies(lambda p: len(p) == 2, "a pair"), distinct=True)
    assert str(pairs) == "a sequence of distinct items, each a pair"
    assert not pairs.is_satisfied_by([[1, 2], [1, 2]])  # unhashable repeats are found too
    assert pairs.is_satisfied_by([[1, 2], [2, 1]])
    mixed = SequenceOf([Interval(int, 0, None), InstanceOf(str)], min_len=2)
    assert str(mixed) == "a sequence of at least 2 items, each an int >= 0 or a str"
    assert mixed.is_satisfied_by([0, "cuda:1"]) and not mixed.is_satisfied_by([0])
    assert str(SequenceOf(int, description="a list of ids")) == "a list of ids"
    assert str(SequenceOf(Interval(float, 0, None, closed="neither"))) == (
        "a sequence of finite numbers > 0"
    )
    assert not any(ints.is_satisfied_by(v) for v in invalid_values([ints]))


def test_make_constraint_and_describe() -> None:
    assert [str(make_constraint(s)) for s in (None, "boolean", "callable", "path", float)] == [
        "None",
        "a bool",
        "a callable",
        "a non-empty path",
        "a float",
    ]
    assert make_constraint("path").is_satisfied_by(pathlib.Path("runs"))
    assert not make_constraint("path").is_satisfied_by("")
    with pytest.raises(ValueError, match="`spec` must be a Constraint"):
        make_constraint("array-like")
    assert describe([None, Interval(int, 1, None)]) == "None or an int >= 1"
    assert describe([Interval(int, 1, None), None]) == "an int >= 1 or None"


def test_check_and_validate_params() -> None:
    assert check("workers", "auto", [Options(["auto"]), Interval(int, 1, None)]) == "auto"
    with pytest.raises(InvalidParameterError) as info:
        check("workers", 0, [Options(["auto"]), Interval(int, 1, None)])
    assert str(info.value) == "`workers` must be 'auto' or an int >= 1, but got 0"
    declared = {"a": [Interval(int, 1, None)], "b": ["boolean"]}
    validate_params(declared, {"a": 1, "b": True, "undeclared": object()})
    validate_params(declared, {})  # absent names are not checked
    with pytest.raises(InvalidParameterError, match=r"^`a` must be"):
        validate_params(declared, {"b": 0, "a": 0})  # declaration order decides


def test_messages_are_brief() -> None:
    with pytest.raises(InvalidParameterError) as info:
        check("names", ["x" * 50] * 20, [None])
    assert str(info.value).endswith("...") and len(str(info.value)) < 250
    assert brief(torch.zeros(2, 3)) == "Tensor(shape=(2, 3), dtype=torch.float32)"
    error = parameter_error("high", "> `low`", 1, context="low=2")
    assert isinstance(error, InvalidParameterError)
    assert str(error) == "`high` must be > `low`, but got 1 (low=2)"


def test_validates_checks_arguments_and_defaults() -> None:
    @validates({"depth": [Interval(int, 1, None)], "name": [str]})
    def tower(*, depth: int = 2, name: Any = 3) -> int:
        return depth

    assert tower.parameter_constraints["depth"][0].low == 1  # type: ignore[attr-defined]
    assert list(inspect.signature(tower).parameters) == ["depth", "name"]
    with pytest.raises(InvalidParameterError, match=r"^`name` must be a str, but got 3$"):
        tower(depth=3)  # the bad default is caught too
    assert tower(depth=4, name="t") == 4
    with pytest.raises(ValueError, match=r"must name parameters of .*, but got \['width'\]"):
        validates({"width": [int]})(tower)


# ---------------------------------------------------------------------- generated


def _search(**kw: Any) -> Any:
    options = {"algorithm": "random", "num_trials": 1, "progress": False, "tensorboard": False}
    return sn.search({"k": sn.oneof([1, 2])}, lambda arch: 1.0, **{**options, **kw})


def _config_fields(cls: type) -> list[str]:
    """The hyperparameters a controller algorithm takes as ``**hyperparameters``."""
    config_class = getattr(cls, "config_class", None)
    return [f.name for f in dataclasses.fields(config_class)] if config_class else []


def _keywords(function: Callable[..., Any], *, keyword_only: bool = False) -> list[str]:
    kinds = {inspect.Parameter.KEYWORD_ONLY}
    if not keyword_only:
        kinds.add(inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in inspect.signature(function).parameters.values() if p.kind in kinds]


def _constructors() -> list[Any]:
    """(id, build(**kw), declared constraints, parameter names), one param per constructor."""
    found = []
    for name in algorithms.available():
        cls = type(algorithms.get(name))
        entry = (
            f"algorithm:{name}",
            lambda name=name, **kw: algorithms.get(name, **kw),
            getattr(cls, "_parameter_constraints", {}),
            _keywords(cls) + _config_fields(cls),
        )
        found.append(pytest.param(*entry, id=entry[0]))
    for name in spaces.available():
        entry = (
            f"space:{name}",
            lambda name=name, **kw: spaces.get(name, **kw),
            spaces.registry.parameter_constraints(name),
            spaces.registry.parameters(name),
        )
        found.append(pytest.param(*entry, id=entry[0]))
    logdir = os.path.join(os.path.dirname(__file__), "never-written")
    others = [
        ("Trainer", sn.Trainer, sn.Trainer._parameter_constraints, _keywords(sn.Trainer)),
        ("WeightSharing", lambda **kw: sn.WeightSharing(**{"trainer": sn.Trainer(), **kw}),
         sn.WeightSharing._parameter_constraints, _keywords(sn.WeightSharing)),
        ("search", _search, SearchOptions._parameter_constraints,
         _keywords(sn.search, keyword_only=True)),
        ("ToyObjective", ToyObjective, ToyObjective._parameter_constraints,
         _keywords(ToyObjective)),
        ("ProgressCallback", ProgressCallback, ProgressCallback._parameter_constraints,
         _keywords(ProgressCallback)),
        ("TensorBoardCallback", lambda **kw: TensorBoardCallback(**{"logdir": logdir, **kw}),
         TensorBoardCallback._parameter_constraints, _keywords(TensorBoardCallback)),
        ("load_mnist5k", load_mnist5k, load_mnist5k.parameter_constraints,  # type: ignore[attr-defined]
         _keywords(load_mnist5k)),
    ]  # fmt: skip
    found += [pytest.param(*entry, id=entry[0]) for entry in others]
    return found


@pytest.mark.parametrize(("what", "build", "constraints", "parameters"), _constructors())
def test_every_parameter_is_declared_and_invalid_values_are_refused(
    what: str, build: Callable[..., Any], constraints: dict[str, list], parameters: list[str]
) -> None:
    undeclared = [p for p in parameters if p not in constraints]
    assert not undeclared, f"{what} declares no constraints for {undeclared}"
    unknown = [p for p in constraints if p not in parameters]
    assert not unknown, f"{what} declares constraints for parameters it lacks: {unknown}"
    problems = []
    for name, declared in constraints.items():
        values = invalid_values(declared)
        assert values, f"{what}: the declaration of `{name}` generates no invalid value"
        for value in values:
            try:
                build(**{name: value})
            except InvalidParameterError as e:
                if not str(e).startswith(f"`{name}` must be"):
                    problems.append(f"{name}={value!r}: {e}")
            except Exception as e:
                problems.append(f"{name}={value!r}: {type(e).__name__}: {e}")
            else:
                problems.append(f"{name}={value!r} was accepted")
    assert not problems, f"{what}:\n" + "\n".join(problems)


def test_constructors_accept_their_defaults() -> None:
    """The generated test can fail only on the value it changes: defaults are valid."""
    for name in algorithms.available():
        algorithms.get(name)
    for name in spaces.available():
        spaces.get(name)
    sn.Trainer()
    ToyObjective()
    ProgressCallback()
    assert len(_search().trials) == 1
