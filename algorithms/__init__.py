"""Search algorithms (installed as ``symbolic_nas.algorithms``), swapped in one line.

Every algorithm proposes token sequences for a codec and learns from rewards;
none ever sees a model, so any algorithm works on any space.

Example:
    >>> import symbolic_nas as sn
    >>> from symbolic_nas import algorithms
    >>> "random" in algorithms.available()
    True
    >>> algo = algorithms.get("random", seed=0)
    >>> algo.setup(sn.encode({"k": sn.oneof([3, 5])}), budget=10)
"""

from symbolic_nas.algorithms import bananas as bananas  # registers "bananas"
from symbolic_nas.algorithms import controller as controller  # registers "reinforce", "ppo"
from symbolic_nas.algorithms import evolution as evolution  # registers "evolution"
from symbolic_nas.algorithms import fixed as fixed  # registers "fixed" (a utility)
from symbolic_nas.algorithms import learned_search as learned_search  # "learned_search"
from symbolic_nas.algorithms import local_search as local_search  # registers "local_search"
from symbolic_nas.algorithms import nsga2 as nsga2  # registers "nsga2"
from symbolic_nas.algorithms import optuna_sampler as optuna_sampler  # "optuna", "tpe"
from symbolic_nas.algorithms import q_learning as q_learning  # registers "q_learning"
from symbolic_nas.algorithms import random_search  # noqa: F401  (registers "random")
from symbolic_nas.algorithms import random_walk as random_walk  # registers "random_walk"
from symbolic_nas.algorithms import successive_halving as successive_halving  # "successive_halving"
from symbolic_nas.algorithms.base import Algorithm, Proposal, available, get, register

__all__ = ["Algorithm", "Proposal", "available", "get", "register"]
