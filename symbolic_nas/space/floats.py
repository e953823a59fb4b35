"""Exact (unbinned) values of float decisions, carried beside the tokens.

Every ``sn.floatv`` decision is a token over its bins (``hints={"bins": n}``), and
tokens stay the one representation every algorithm, the journal and replay share.
An algorithm that can handle continuous values (``random``, ``evolution``,
``optuna``) also hands out the exact value of each active float decision: a dict
``{decision index: value}`` (a proposal's and a trial's ``floats``), whose token is
the bin nearest the value (on the float's scale), so that anything that reads
tokens alone sees the nearest bin. Materialising, labels, ``decode`` and the DNA
take the exact value where there is one and the bin's value elsewhere. In JSON (the
journal, checkpoints) the keys are strings (:func:`floats_to_json`).

Example:
    >>> import random, symbolic_nas as sn
    >>> codec = sn.encode({"lr": sn.floatv(1e-4, 1e-1, scale="log"), "k": sn.oneof([3, 5])})
    >>> tokens, floats = codec.random_sample(random.Random(0))
    >>> list(floats) == [0] and floats[0] not in codec.decisions[0].values
    True
    >>> codec.materialize(tokens, floats)["lr"] == floats[0]
    True
"""

from __future__ import annotations

import numbers
import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from symbolic_nas.space.decisions import FLOAT, Decision, float_from_unit, float_to_unit
from symbolic_nas.space.walker import nearest_bin

if TYPE_CHECKING:
    from symbolic_nas.space.codec import Codec

__all__ = [
    "check_floats",
    "floats_from_json",
    "floats_to_json",
    "perturb_float",
    "random_float",
    "snap_floats",
]

#: The standard deviation of :func:`perturb_float`'s step, as a share of the range
#: (on the float's scale).
PERTURB_SIGMA = 0.1


def random_float(dec: Decision, rng: random.Random) -> float:
    """A value of float decision ``dec`` drawn uniformly on its scale (log-uniform
    for ``scale="log"``).

    Example:
        >>> import symbolic_nas as sn
        >>> dec = sn.encode({"lr": sn.floatv(1e-4, 1e-1, scale="log")}).decisions[0]
        >>> 1e-4 <= random_float(dec, random.Random(0)) <= 1e-1
        True
    """
    return float_from_unit(dec, rng.random())


def perturb_float(dec: Decision, value: float, rng: random.Random) -> float:
    """``value`` moved by a Gaussian step on the float's scale (standard deviation
    :data:`PERTURB_SIGMA` of the range: multiplicative for ``scale="log"``),
    reflected at the ends so that it stays in ``[low, high]`` (clipping would pile
    children on the ends, where a parent there could not move inwards half the time).

    Example:
        >>> import symbolic_nas as sn
        >>> dec = sn.encode({"p": sn.floatv(0.0, 1.0)}).decisions[0]
        >>> child = perturb_float(dec, 0.5, random.Random(0))
        >>> 0.0 <= child <= 1.0 and child != 0.5
        True
    """
    unit = float_to_unit(dec, value) + rng.gauss(0.0, PERTURB_SIGMA)
    unit = abs(unit) % 2.0  # reflect at 0 and at 1
    if unit > 1.0:
        unit = 2.0 - unit
    return float_from_unit(dec, unit)


def check_floats(
    codec: Codec, trace: Sequence[int], tokens: Sequence[int], floats: Mapping[Any, Any]
) -> dict[int, float]:
    """``floats`` as ``{decision index: float}``, checked against a token sequence.

    Args:
        codec: The space's codec.
        trace: The decision index of each token (:meth:`Codec.trace`).
        tokens: The tokens.
        floats: Exact values by decision index (an int, or its string as in JSON).

    Raises:
        ValueError: A key is not an active float decision of ``tokens``, a value is
            not a number in the decision's range, or the token of a decision is not
            the bin nearest its value.
    """
    positions = {d: i for i, d in enumerate(trace)}
    out: dict[int, float] = {}
    for key, value in floats.items():
        dec, value = _entry(codec, positions, key, value)
        token, nearest = tokens[positions[dec.index]], nearest_bin(dec, value)
        if token != nearest:
            raise ValueError(
                f"the token of float decision {dec.name!r} must be the bin nearest its value "
                f"{value!r} ({nearest}), but got {token}"
            )
        out[dec.index] = value
    return out


def snap_floats(
    codec: Codec, tokens: Sequence[int], floats: Mapping[Any, Any]
) -> tuple[list[int], dict[int, float]]:
    """The tokens with each float decision's token set to the bin nearest its exact
    value, and the values checked as :func:`check_floats` checks them.

    Example:
        >>> import symbolic_nas as sn
        >>> codec = sn.encode({"p": sn.floatv(0.0, 1.0, hints={"bins": 3})})
        >>> snap_floats(codec, [0], {0: 0.9})
        ([2], {0: 0.9})
    """
    tokens = list(tokens)
    if not floats:
        return tokens, {}
    # A float's token never changes what comes next, so the trace stays valid.
    positions = {d: i for i, d in enumerate(codec.trace(tokens))}
    out: dict[int, float] = {}
    for key, value in floats.items():
        dec, value = _entry(codec, positions, key, value)
        tokens[positions[dec.index]] = nearest_bin(dec, value)
        out[dec.index] = value
    return tokens, out


def _entry(
    codec: Codec, positions: Mapping[int, int], key: Any, value: Any
) -> tuple[Decision, float]:
    """The float decision of a key of ``floats`` and its value, checked."""
    try:
        index = int(key)
    except (TypeError, ValueError):
        index = -1
    dec = codec.decisions[index] if 0 <= index < codec.num_decisions else None
    if dec is None or dec.kind != FLOAT or index not in positions:
        raise ValueError(
            "the keys of `floats` must be the indices of active float decisions of the "
            f"tokens, but got {key!r}"
        )
    if (
        not isinstance(value, numbers.Real)
        or isinstance(value, bool)
        or not dec.low <= value <= dec.high  # type: ignore[operator]
    ):
        raise ValueError(
            f"`floats[{index}]` must be a number in [{dec.low}, {dec.high}] for decision "
            f"{dec.name!r}, but got {value!r}"
        )
    return dec, float(value)


def floats_to_json(floats: Mapping[int, float]) -> dict[str, float]:
    """``floats`` with string keys, as JSON writes them.

    Example:
        >>> floats_to_json({3: 0.5})
        {'3': 0.5}
    """
    return {str(k): float(v) for k, v in floats.items()}


def floats_from_json(data: Any) -> dict[int, float]:
    """The inverse of :func:`floats_to_json`; None or a missing field is ``{}`` (journals
    and checkpoints written before exact floats existed).

    Example:
        >>> floats_from_json({"3": 0.5}), floats_from_json(None)
        ({3: 0.5}, {})
    """
    if not data:
        return {}
    return {int(k): float(v) for k, v in data.items()}
