"""Any symbolic_nas algorithm as a ``pg.DNAGenerator``, so ``pg.sample`` drives it.

``pg.sample`` yields what PyGlove's own template decodes: for a space of
``sn.symbolize``'d modules that is the symbolic record of the call (a
:class:`~symbolic_nas.space.symbolic.Call`), not a module, and PyGlove cannot
decode a plain ``dict``/``list`` space at all. The adapter closes both gaps:
:meth:`DNAGeneratorAdapter.sample` runs ``pg.sample`` and yields the
materialised object (a fresh ``nn.Module``) with its feedback, and
:meth:`DNAGeneratorAdapter.materialize` is the one call that turns a
``pg.sample`` example's DNA (``feedback.dna``) into it; the adapter's
:attr:`space` is the space as a PyGlove value (a plain ``dict``/``list``
becomes a ``pg.Dict``/``pg.List``), which ``pg.sample`` accepts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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

    Make one with ``algo.as_dna_generator(space=space)``.

    Example:
        >>> import pyglove as pg, symbolic_nas as sn
        >>> from symbolic_nas import algorithms
        >>> space = pg.Dict(k=sn.oneof([3, 5]))
        >>> gen = algorithms.get("random", seed=0).as_dna_generator(space=space)
        >>> for value, feedback in pg.sample(space, gen, num_examples=2):
        ...     feedback(float(value.k))   # pg.sample re-issues a trial until it gets feedback
        >>> gen.algorithm.num_feedback
        2

        Modules, and plain ``dict`` spaces, through :meth:`sample`:

        >>> import torch.nn as nn
        >>> Linear = sn.symbolize(nn.Linear)
        >>> space = {"layer": Linear(4, sn.oneof([2, 3])), "lr": sn.oneof([0.1, 0.01])}
        >>> gen = algorithms.get("evolution", seed=0).as_dna_generator(space=space)
        >>> for value, feedback in gen.sample(num_examples=2):
        ...     feedback(float(value["layer"].out_features))
        >>> type(value["layer"]).__name__, type(gen.space).__name__
        ('Linear', 'Dict')
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

    def materialize(self, dna: pg.DNA) -> Any:
        """The concrete object (a fresh ``nn.Module`` for module spaces) of a sampled DNA.

        Args:
            dna: The DNA of a ``pg.sample`` example (``feedback.dna``), or any DNA
                of the space.

        Raises:
            ValueError: The generator was made without ``space`` (the DNASpec alone
                cannot build objects), or has not been set up by ``pg.sample`` yet.
        """
        if self.space is None:
            raise ValueError(
                "`space` must be given to as_dna_generator(space=...) to materialise samples, "
                "but the generator was made from the DNASpec alone"
            )
        if not isinstance(dna, pg.DNA):
            raise TypeError(f"`dna` must be a pg.DNA (feedback.dna), but got {dna!r}")
        codec = self.algorithm.codec
        proposal_id = dna.metadata.get(_KEY) if dna.metadata else None
        proposal = (
            self.algorithm.outstanding_proposal(proposal_id) if proposal_id is not None else None
        )
        if proposal is not None:
            return codec.materialize(proposal.tokens, proposal.floats)
        return codec.materialize(*codec.to_tokens_and_floats(dna))

    def sample(self, num_examples: int | None = None, **kwargs: Any) -> Iterator[tuple[Any, Any]]:
        """``pg.sample(self.space, self, ...)``, yielding materialised objects.

        Args:
            num_examples: How many examples (None: until the algorithm stops).
            **kwargs: Other arguments of ``pg.sample`` (``name``, ``where`` is not
                supported: every decision belongs to the algorithm).

        Yields:
            ``(object, feedback)``: the concrete object (fresh modules) and
            PyGlove's feedback (call it with the reward, or ``feedback.skip()``).
        """
        if self.space is None:
            raise ValueError(
                "`space` must be given to as_dna_generator(space=...) to sample, "
                "but the generator was made from the DNASpec alone"
            )
        if "where" in kwargs:
            raise ValueError("`where` must not be given: every decision belongs to the algorithm")
        for _, feedback in pg.sample(self.space, self, num_examples=num_examples, **kwargs):
            yield self.materialize(feedback.dna), feedback
