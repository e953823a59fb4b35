"""Pieces the space factories' parameter declarations share (:mod:`symbolic_nas.validation`).

Example:
    >>> from symbolic_nas.spaces._constraints import CHOICES, ODD_CHOICES
    >>> str(CHOICES), ODD_CHOICES.is_satisfied_by((1, 3)), ODD_CHOICES.is_satisfied_by((2,))
    ('a non-empty sequence of distinct ints >= 1', True, False)
"""

from __future__ import annotations

from symbolic_nas.validation import Interval, Satisfies, SequenceOf

__all__ = ["CHOICES", "ODD_CHOICES", "POSITIVE_INT"]

POSITIVE_INT = Interval(int, 1, None)
_ODD_INT = Satisfies(
    lambda k: POSITIVE_INT.is_satisfied_by(k) and k % 2 == 1,
    "an odd int >= 1",
    invalid=[2],
    plural="odd ints >= 1",
)
#: Candidate sizes: a non-empty sequence of distinct ints >= 1.
CHOICES = SequenceOf(POSITIVE_INT, min_len=1, distinct=True)
#: Candidate kernel sizes: the same, odd.
ODD_CHOICES = SequenceOf(_ODD_INT, min_len=1, distinct=True)
