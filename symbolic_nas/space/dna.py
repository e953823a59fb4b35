"""The lazily built ``pg.DNA`` of anything that carries tokens and a codec.

Proposals (algorithms layer) and trials (storage layer) both hold an
architecture as tokens plus, optionally, the :class:`~symbolic_nas.space.codec.Codec`
it belongs to; :class:`LazyDNA` gives both the same ``.dna`` property, which
builds the ``pg.DNA`` on first access (it costs milliseconds) and keeps it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyglove as pg

    from symbolic_nas.space.codec import Codec

__all__ = ["LazyDNA"]


class LazyDNA:
    """Mixin: ``.dna``, the ``pg.DNA`` of ``self.tokens`` under ``self.codec``.

    The class using it provides ``id``, ``tokens`` and ``codec`` (a dataclass's
    fields), and optionally ``floats`` (exact float values, see
    :mod:`symbolic_nas.space.floats`); the DNA is cached in ``_dna`` (None until
    first built).

    Example:
        >>> import dataclasses
        >>> from symbolic_nas.space import encode, oneof
        >>> @dataclasses.dataclass
        ... class Pick(LazyDNA):
        ...     id: int
        ...     tokens: list[int]
        ...     codec: Codec | None = None
        >>> codec = encode({"k": oneof([3, 5])})
        >>> pick = Pick(0, [1], codec)
        >>> pick._dna is None, codec.to_tokens(pick.dna), pick._dna is pick.dna
        (True, [1], True)
        >>> Pick(1, [0]).dna
        Traceback (most recent call last):
        ValueError: pick 1 has no codec to build its DNA with
    """

    id: int
    tokens: list[int]
    codec: Codec | None
    _dna: pg.DNA | None = None

    @property
    def dna(self) -> pg.DNA:
        """The ``pg.DNA`` of the tokens, built on first access (it costs milliseconds)."""
        if self._dna is None:
            if self.codec is None:
                raise ValueError(
                    f"{type(self).__name__.lower()} {self.id} has no codec to build its DNA with"
                )
            self._dna = self.codec.from_tokens(self.tokens, getattr(self, "floats", None))
        return self._dna
