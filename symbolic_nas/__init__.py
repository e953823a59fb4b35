"""symbolic_nas: neural architecture search over ordinary PyTorch code.

Write a model once as normal ``nn.Module`` code with choice placeholders where
decisions are open (or annotate an existing model), encode the space into
token sequences, let a search algorithm propose tokens, and materialise each
proposal into a fresh, plain PyTorch module.

The package is layered; imports flow one way (a test keeps it so):
:mod:`~symbolic_nas.space` ← :mod:`symbolic_nas.algorithms` ← :mod:`~symbolic_nas.storage`
← :mod:`~symbolic_nas.tuner` ← :mod:`~symbolic_nas.review` ← :mod:`~symbolic_nas.cli`.

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

from symbolic_nas.api import search
from symbolic_nas.space import (
    Annotated,
    Call,
    Codec,
    Decision,
    Step,
    annotate,
    encode,
    floatv,
    intv,
    keep,
    manyof,
    materialize,
    oneof,
    permutate,
    subset,
    symbolize,
)
from symbolic_nas.space.pool import ParameterPool
from symbolic_nas.storage import SearchResult, Trial, TrialStatus, load_run
from symbolic_nas.training import Trainer, WeightSharing
from symbolic_nas.training.latency_table import LatencyTable
from symbolic_nas.training.measure import measured
from symbolic_nas.training.reports import TrialPruned, current_trial, report
from symbolic_nas.tuner import evaluator, pruners, trial_seed
from symbolic_nas.tuner.objectives import MnasNetReward, ObjectiveMissingError, TuNASReward

__version__ = "0.2.0"  # the only place the version is written (pyproject reads it)

__all__ = [
    "Annotated",
    "Call",
    "Codec",
    "Decision",
    "LatencyTable",
    "MnasNetReward",
    "ObjectiveMissingError",
    "ParameterPool",
    "SearchResult",
    "Step",
    "Trainer",
    "Trial",
    "TrialPruned",
    "TrialStatus",
    "TuNASReward",
    "WeightSharing",
    "annotate",
    "current_trial",
    "encode",
    "evaluator",
    "floatv",
    "intv",
    "keep",
    "load_run",
    "manyof",
    "materialize",
    "measured",
    "oneof",
    "permutate",
    "pruners",
    "report",
    "search",
    "subset",
    "symbolize",
    "trial_seed",
]
