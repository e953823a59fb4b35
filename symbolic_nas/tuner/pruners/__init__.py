"""Pruners: stopping rules for trials, swapped in one line (``sn.search(..., pruner=...)``).

``"median"`` (:class:`MedianPruner`, Golovin et al. 2017), ``"asha"``
(:class:`ASHAPruner`, Li et al. 2020) and ``"hyperband"`` (:class:`HyperbandPruner`,
Li et al. 2018), each one file behind :class:`Pruner`.

Example:
    >>> from symbolic_nas.tuner import pruners
    >>> pruners.available()
    ['asha', 'hyperband', 'median']
"""

from symbolic_nas.tuner.pruners.asha import ASHAPruner
from symbolic_nas.tuner.pruners.base import Pruner, available, get, register
from symbolic_nas.tuner.pruners.hyperband import HyperbandPruner
from symbolic_nas.tuner.pruners.median import MedianPruner

__all__ = [
    "ASHAPruner",
    "HyperbandPruner",
    "MedianPruner",
    "Pruner",
    "available",
    "get",
    "register",
]
