"""Random search: uniformly random valid token sequences (Bergstra & Bengio, JMLR 2012).

Each token is drawn uniformly among the tokens the encoder's masks allow at
that step, so every proposal is valid. Float decisions get an exact value drawn
uniformly on the float's scale (log-uniform for ``scale="log"``) instead of a
bin, unless ``unbinned_floats=False`` (see :mod:`symbolic_nas.space.floats`). It
is the baseline every learning algorithm must beat.
"""

from __future__ import annotations

from typing import Any, ClassVar

from symbolic_nas.algorithms.base import Algorithm, Proposed, register
from symbolic_nas.validation import validate_params


@register("random")
class RandomSearch(Algorithm):
    """Random search over token sequences.

    Reference: J. Bergstra and Y. Bengio, "Random Search for Hyper-Parameter
    Optimization", JMLR 13, 2012.

    Args:
        unbinned_floats: Draw each active float decision's exact value uniformly
            on its scale (the proposal's ``floats``; its token is the nearest bin).
            False draws a bin, as token-based algorithms do.
        seed: Seed of the algorithm's own RNG.

    Example:
        >>> import symbolic_nas as sn
        >>> from symbolic_nas import algorithms
        >>> algo = algorithms.get("random", seed=0)
        >>> algo.setup(sn.encode({"k": sn.oneof([3, 5]), "lr": sn.floatv(1e-4, 1e-1, scale="log")}))
        >>> p = algo.propose()
        >>> p.tokens[0] in (0, 1), 1e-4 <= p.floats[1] <= 1e-1
        (True, True)
    """

    learns = False
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **Algorithm._parameter_constraints,
        "unbinned_floats": ["boolean"],
    }

    def __init__(self, *, unbinned_floats: bool = True, seed: int | None = 0):
        validate_params(self._parameter_constraints, {"unbinned_floats": unbinned_floats})
        super().__init__(seed=seed)
        self.unbinned_floats = unbinned_floats

    def _propose(self) -> Proposed:
        if self.unbinned_floats:
            tokens, floats = self.codec.random_sample(self.rng)
            return tokens, None, floats
        return self.codec.random_tokens(self.rng), None

    def _state_dict(self) -> dict[str, Any]:
        return {"unbinned_floats": self.unbinned_floats}

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        # A checkpoint of an earlier version (no key) drew bins.
        saved = state.get("unbinned_floats", False)
        if saved != self.unbinned_floats and self.codec.has_floats:
            raise ValueError(
                f"`unbinned_floats` must match the saved algorithm's ({saved!r}), "
                f"but got {self.unbinned_floats!r}"
            )

    def __repr__(self) -> str:
        extra = "" if self.unbinned_floats else "unbinned_floats=False, "
        return f"{type(self).__name__}({extra}seed={self.seed})"
