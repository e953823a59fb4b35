"""symbolic_nas: neural architecture search over ordinary PyTorch code.

Write a model once as normal ``nn.Module`` code with choice placeholders where
decisions are open (or annotate an existing model), encode the space into
token sequences, let a search algorithm propose tokens, and materialise each
proposal into a fresh, plain PyTorch module.

Example:
    >>> import random, torch.nn as nn, symbolic_nas as sn
    >>> @sn.symbolize
    ... class Net(nn.Module):
    ...     def __init__(self, width: int):
    ...         super().__init__()
    ...         self.fc = nn.Linear(4, width)
    >>> space = Net(sn.oneof([8, 16]))
    >>> codec = sn.encode(space)
    >>> model = sn.materialize(space, codec.random_tokens(random.Random(0)))
    >>> isinstance(model, Net)
    True
"""

from symbolic_nas.annotate import Annotated, annotate, keep
from symbolic_nas.codec import Codec, Decision, Step, encode
from symbolic_nas.evaluators import evaluator
from symbolic_nas.materialize import materialize
from symbolic_nas.placeholders import floatv, intv, manyof, oneof, permutate, subset
from symbolic_nas.symbolic import Call, symbolize
from symbolic_nas.training import Trainer
from symbolic_nas.trial import SearchResult, Trial
from symbolic_nas.tuner import search

__version__ = "0.1.0"

__all__ = [
    "Annotated",
    "Call",
    "Codec",
    "Decision",
    "SearchResult",
    "Step",
    "Trainer",
    "Trial",
    "annotate",
    "encode",
    "evaluator",
    "floatv",
    "intv",
    "keep",
    "manyof",
    "materialize",
    "oneof",
    "permutate",
    "search",
    "subset",
    "symbolize",
]
