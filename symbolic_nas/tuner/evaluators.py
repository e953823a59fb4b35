"""How an evaluator says what it wants: a built model (default), the tokens, or the DNA.

A tabular benchmark scores an architecture from its tokens alone; declaring
``input="tokens"`` lets a search skip building networks and ``pg.DNA`` objects.

**Evaluators with state.** An evaluator object whose class sets ``sn_stateful = True``
(``sn.WeightSharing`` does: its parameter pool) is told about the search and persisted
with it:

- ``bind(codec)`` is called once per session, before any trial (it may refuse the space);
- ``state_dict()`` is saved with the run directory (``evaluator.pt``, atomically, read
  back with ``weights_only=True``) whenever the algorithm is checkpointed, and
  ``load_state_dict(state)`` restores it when the run resumes;
- ``stats()``, when it has one, is logged to TensorBoard as ``evaluator/<key>``.

``sn_single_process = True`` says that the evaluator must run in the driver's process
(``workers=1``, inline): a search asked to run it elsewhere stops with an error naming
the rule. ``sn_evaluation`` names the kind of evaluation in the run's config
(``"stand_alone"`` when absent), which ``symbolic-nas report`` shows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["INPUTS", "evaluation_kind", "evaluator", "input_of", "is_stateful", "single_process"]

INPUTS = ("model", "tokens", "dna")
_ATTRIBUTE = "sn_input"

F = TypeVar("F", bound=Callable[..., Any])


def evaluator(input: str = "model") -> Callable[[F], F]:
    """Decorator declaring what an evaluator function (or method) receives.

    Args:
        input: ``"model"`` (a freshly materialised object), ``"tokens"`` (a list of
            ints) or ``"dna"`` (a ``pg.DNA``).

    Example:
        >>> import symbolic_nas as sn
        >>> @sn.evaluator(input="tokens")
        ... def score(tokens):
        ...     return float(sum(tokens))
        >>> sn.tuner.evaluators.input_of(score)
        'tokens'
    """
    if input not in INPUTS:
        raise ValueError(f"`input` must be one of {INPUTS}, but got {input!r}")

    def decorate(fn: F) -> F:
        setattr(fn, _ATTRIBUTE, input)
        return fn

    return decorate


def input_of(fn: Any) -> str:
    """What ``fn`` wants: its declared input, else ``"model"`` (bound methods included)."""
    value = getattr(fn, _ATTRIBUTE, "model")
    if value not in INPUTS:
        raise ValueError(
            f"`{_ATTRIBUTE}` of an evaluator must be one of {INPUTS}, but got {value!r}"
        )
    return value


def is_stateful(fn: Any) -> bool:
    """Whether ``fn`` is an evaluator with state (see the module docstring)."""
    return getattr(fn, "sn_stateful", False) is True


def single_process(fn: Any) -> bool:
    """Whether ``fn`` must run in the driver's process."""
    return getattr(fn, "sn_single_process", False) is True


def evaluation_kind(fn: Any) -> str:
    """``fn``'s kind of evaluation: its ``sn_evaluation``, else ``"stand_alone"``.

    Example:
        >>> evaluation_kind(len)
        'stand_alone'
    """
    kind = getattr(fn, "sn_evaluation", "stand_alone")
    return kind if isinstance(kind, str) else "stand_alone"
