"""The learned search agent (Cassimon, Mercelis & Mets, 2024) and its Ape-X training.

* :class:`LearnedSearch` (registered as ``"learned_search"``): the agent as a
  search algorithm, walking from neighbour to neighbour.
* :func:`train`: Ape-X training (actor processes or Ray actors, one learner with
  prioritised replay, double Q with n-step returns) against a cheap objective.
* :func:`save_agent`, :func:`load_agent`, :func:`new_agent`: agent files
  (weights only) and the shipped agents (:data:`SHIPPED`).

Example:
    >>> import symbolic_nas as sn
    >>> from symbolic_nas import algorithms, spaces
    >>> algo = algorithms.get("learned_search", seed=0)   # shipped agent on NAS-Bench-201
    >>> algo.setup(sn.encode(spaces.get("nasbench201")), budget=10)
    >>> algo.trained
    True
"""

from symbolic_nas.algorithms.learned_search.agent import (
    SHIPPED,
    Agent,
    load_agent,
    new_agent,
    save_agent,
    signature,
)
from symbolic_nas.algorithms.learned_search.algorithm import LearnedSearch
from symbolic_nas.algorithms.learned_search.apex import TrainResult, epsilons, train

__all__ = [
    "SHIPPED",
    "Agent",
    "LearnedSearch",
    "TrainResult",
    "epsilons",
    "load_agent",
    "new_agent",
    "save_agent",
    "signature",
    "train",
]
