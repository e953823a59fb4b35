"""Any symbolic_nas algorithm as a ``pg.DNAGenerator``, so ``pg.sample`` drives it."""

from __future__ import annotations

import pyglove as pg

from symbolic_nas.space.codec import Codec

__all__ = ["DNAGeneratorAdapter"]

_KEY = "symbolic_nas_proposal_id"


@pg.members(
    [
        ("algorithm", pg.typing.Any(), "The symbolic_nas algorithm."),
        ("space", pg.typing.Any(default=None), "The space pg.sample is called with, if known."),
    ]
)
class DNAGeneratorAdapter(pg.DNAGenerator):
    """Adapts an :class:`~symbolic_nas.algorithms.base.Algorithm` to PyGlove.

    Example:
        >>> import pyglove as pg, symbolic_nas as sn
        >>> from symbolic_nas import algorithms
        >>> space = pg.Dict(k=sn.oneof([3, 5]))
        >>> gen = algorithms.get("random", seed=0).as_dna_generator(space=space)
        >>> for value, feedback in pg.sample(space, gen, num_examples=2):
        ...     feedback(float(value.k))   # pg.sample re-issues a trial until it gets feedback
        >>> gen.algorithm.num_feedback
        2
    """

    def _setup(self) -> None:
        if self.space is not None:
            codec = Codec(self.space, spec=self.dna_spec)
        else:
            codec = Codec.from_spec(self.dna_spec)
        self.algorithm.setup(codec, budget=None)

    def _propose(self) -> pg.DNA:
        proposal = self.algorithm.propose()
        dna = proposal.dna
        dna.set_metadata(_KEY, proposal.id)
        return dna

    def _feedback(self, dna: pg.DNA, reward: float | tuple[float, ...]) -> None:
        proposal = self.algorithm.outstanding_proposal(dna.metadata[_KEY])
        if proposal is None:
            raise ValueError(
                f"`dna` must be an outstanding proposal of this generator, but proposal "
                f"{dna.metadata[_KEY]} was already answered"
            )
        value = reward[0] if isinstance(reward, tuple) else reward
        self.algorithm.feedback(proposal, float(value))
