"""Random search: uniformly random valid token sequences (Bergstra & Bengio, JMLR 2012).

Each token is drawn uniformly among the tokens the encoder's masks allow at
that step, so every proposal is valid. It is the baseline every learning
algorithm must beat.
"""

from __future__ import annotations

from typing import Any

from symbolic_nas.algorithms.base import Algorithm, register


@register("random")
class RandomSearch(Algorithm):
    """Random search over token sequences.

    Reference: J. Bergstra and Y. Bengio, "Random Search for Hyper-Parameter
    Optimization", JMLR 13, 2012.

    Args:
        seed: Seed of the algorithm's own RNG.

    Example:
        >>> import symbolic_nas as sn
        >>> from symbolic_nas import algorithms
        >>> algo = algorithms.get("random", seed=0)
        >>> algo.setup(sn.encode({"k": sn.oneof([3, 5])}))
        >>> algo.propose().tokens in ([0], [1])
        True
    """

    learns = False

    def _propose(self) -> tuple[list[int], dict[str, Any] | None]:
        return self.codec.random_tokens(self.rng), None
