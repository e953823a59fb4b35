"""A fixed list of architectures: proposes given token sequences, in order.

A utility for flows of searches, not a search algorithm of its own: it learns
nothing and cites no paper. Its use is the second stage of a two-stage flow (as in
ENAS, Pham et al. 2018, and SPOS, Guo et al. 2020, where the architectures a
shared-weight search found are retrained from scratch)::

    finalists = shared_result.top(5, distinct=True)
    sn.search(space, trainer, num_trials=5,
              algorithm=algorithms.get("fixed", tokens=[t.tokens for t in finalists]))

After the list, it proposes uniformly random valid sequences (so a search with more
trials than the list goes on; with ``num_trials=len(tokens)`` exactly the list is run).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from symbolic_nas.algorithms.base import Algorithm, register
from symbolic_nas.validation import Satisfies, parameter_error, validate_params

__all__ = ["Fixed"]


def _is_token_lists(value: Any) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, (str, bytes))
        and all(
            isinstance(tokens, Sequence)
            and not isinstance(tokens, (str, bytes))
            and all(isinstance(t, int) and not isinstance(t, bool) for t in tokens)
            for tokens in value
        )
    )


@register("fixed")
class Fixed(Algorithm):
    """Proposes the given token sequences in order, then random ones (a utility).

    Not a search algorithm from a paper: a utility that turns a list of
    architectures (e.g. the finalists of a shared-weight search,
    ``[t.tokens for t in result.top(5)]``) into proposals, so that retraining them
    is an ordinary ``sn.search``. Each sequence is checked against the space's
    codec in :meth:`setup`.

    Args:
        tokens: The token sequences (a JSON-able list of lists of ints).
        seed: Seed of the random proposals after the list.

    Raises:
        InvalidParameterError: If ``tokens`` is not a list of lists of ints, or
            (in ``setup``) a sequence is not valid for the space.

    Example:
        >>> import symbolic_nas as sn
        >>> from symbolic_nas import algorithms
        >>> algo = algorithms.get("fixed", tokens=[[2, 0], [1, 1]])
        >>> algo.setup(sn.encode({"a": sn.oneof([1, 2, 3]), "b": sn.oneof([4, 5])}))
        >>> [algo.propose().tokens for _ in range(2)]
        [[2, 0], [1, 1]]
    """

    learns = False
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **Algorithm._parameter_constraints,
        "tokens": [
            Satisfies(_is_token_lists, "a list of token lists (lists of ints)", invalid=[[1, 2]])
        ],
    }

    def __init__(self, *, tokens: Sequence[Sequence[int]] = (), seed: int | None = 0) -> None:
        validate_params(self._parameter_constraints, {"tokens": tokens, "seed": seed})
        super().__init__(seed=seed)
        self.tokens = [[int(t) for t in sequence] for sequence in tokens]

    def _setup(self) -> None:
        for index, sequence in enumerate(self.tokens):
            try:
                self.codec.validate(sequence)
            except ValueError as e:
                raise parameter_error(
                    f"tokens[{index}]", "a valid token sequence of the space", sequence,
                    context=str(e),
                ) from None  # fmt: skip

    def _propose(self) -> tuple[list[int], dict[str, Any] | None]:
        index = self.num_proposed
        if index < len(self.tokens):
            return list(self.tokens[index]), {"fixed": index}
        return self.codec.random_tokens(self.rng), None

    def __repr__(self) -> str:
        return f"Fixed(tokens={self.tokens!r}, seed={self.seed})"
