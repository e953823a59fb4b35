"""The public space contract suite, run over every registered space (and on bad spaces)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import symbolic_nas as sn
from symbolic_nas import spaces
from symbolic_nas.testing import (
    check_registered_space,
    check_space,
    check_space_deterministic,
    check_space_forward,
    check_space_reachable,
)

# Smaller settings where a space's defaults are the paper's full-size ones: MetaQNN's
# 64..512 filters on 32x32 images and 18 layers (its defaults are checked for their
# decision count in test_metaqnn.py).
SMALL = {"metaqnn": {"max_layers": 4, "conv_filters": (4, 8), "fc_sizes": (16, 8)}}


@pytest.mark.parametrize("name", spaces.available())
def test_registered_space_passes_contract(name: str) -> None:
    check_registered_space(name, **SMALL.get(name, {}))


def test_every_registered_space_has_an_example() -> None:
    for name in spaces.available():
        example = spaces.example(name, **SMALL.get(name, {}))
        assert isinstance(example.inputs, tuple) and example.output_shape is not None


def test_unknown_example_is_rejected() -> None:
    expected = r"`name` must name a registered space example, one of \[.*'nasbench201'.*\], but got"
    with pytest.raises(ValueError, match=expected):
        spaces.example("nope")


def test_space_and_example_registries(monkeypatch: pytest.MonkeyPatch) -> None:
    from symbolic_nas.spaces import examples, registry

    monkeypatch.setattr(registry, "_REGISTRY", registry._REGISTRY.copy())
    monkeypatch.setattr(examples, "_EXAMPLES", examples._EXAMPLES.copy())

    @spaces.register("test_only_space")
    def factory(*, width: int = 2) -> dict[str, object]:
        return {"w": sn.oneof([width, 2 * width])}

    @spaces.register_example("test_only_space")
    def example(*, width: int = 2) -> spaces.Example:
        return spaces.Example(inputs=(), output_shape=(width,))

    assert spaces.register("test_only_space")(factory) is factory  # idempotent
    assert "test_only_space" in spaces.available()
    assert spaces.get("test_only_space", width=3) == factory(width=3)
    assert spaces.parameters("test_only_space") == ["width"]
    assert spaces.example("test_only_space", width=5).output_shape == (5,)
    with pytest.raises(ValueError, match=r"`name` must be a name no other space is registered"):
        spaces.register("test_only_space")(lambda: {})
    with pytest.raises(ValueError, match=r"no other space example is registered under"):
        spaces.register_example("test_only_space")(lambda: example())
    with pytest.raises(ValueError, match=r"`space` must be one of \[.*'test_only_space'.*\], but"):
        spaces.get("nope")
    with pytest.raises(ValueError, match=r"`space` must be one of"):
        spaces.parameters("nope")


Linear = sn.symbolize(nn.Linear)


@sn.symbolize
class Flaky(nn.Module):
    """A module that is a different architecture every time it is built."""

    counter = 0

    def __init__(self, width: int):
        super().__init__()
        Flaky.counter += 1
        self.fc = nn.Linear(4, width + Flaky.counter % 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)[:, :2]


def test_user_space_passes() -> None:
    space = Linear(4, 3, bias=sn.oneof([True, False]))
    check_space(space, torch.ones(2, 4), output_shape=(2, 3))


def test_shape_depending_on_architecture_fails() -> None:
    space = Linear(4, sn.oneof([2, 3]))
    with pytest.raises(AssertionError, match="output shapes must not depend on the architecture"):
        check_space_forward(space, torch.ones(1, 4), num_samples=10)
    with pytest.raises(AssertionError, match=r"output shapes must be \(1, 2\)"):
        check_space_reachable(space, torch.ones(1, 4), output_shape=(1, 2))


def test_nondeterministic_space_fails() -> None:
    with pytest.raises(AssertionError, match="must give the same architecture every time"):
        check_space_deterministic(Flaky(sn.oneof([2, 3])), torch.ones(1, 4))


def test_unreachable_token_fails() -> None:
    # An exact-2-of-2 anchor group: token 0 of either member can never be taken.
    space = {"skip": sn.manyof(2, [0, 1], sorted=True, hints={"anchor": 2})}
    with pytest.raises(AssertionError, match=r"token 0 \('0'\) of decision .* must be reachable"):
        check_space_reachable(space)


def test_reachability_backtracks_over_masks() -> None:
    # 2 of 3 members chosen: member 2 can be 0 only when both earlier members are 1.
    space = {"skip": sn.manyof(2, [0, 1, 2], sorted=True, hints={"anchor": 3})}
    sequences = check_space_reachable(space)
    codec = sn.encode(space)
    taken = {(d, t) for s in sequences for d, t in zip(codec.trace(s), s)}
    assert taken == {(d, t) for d in range(3) for t in (0, 1)}


def test_reachability_covers_conditional_branches() -> None:
    space = sn.oneof([{"a": sn.oneof([1, 2])}, {"b": sn.oneof([3, 4, 5])}])
    sequences = check_space_reachable(space)
    assert sorted(sequences) == [[0, 0], [0, 1], [1, 0], [1, 1], [1, 2]]


def test_reachable_builds_on_meta_device() -> None:
    space = Linear(4, 3, bias=sn.oneof([True, False]))
    check_space_reachable(space, torch.ones(2, 4), output_shape=(2, 3), device="meta")
