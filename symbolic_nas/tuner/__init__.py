"""Tuner layer: the search loop, its options, evaluation of one trial, and executors.

The tuner owns time, failure and cost; algorithms own learning. It never imports
the review layer: :func:`symbolic_nas.search` (the facade) hands it the default
callbacks.
"""

from symbolic_nas.tuner.callbacks import Callback, SearchContext
from symbolic_nas.tuner.evaluators import evaluator
from symbolic_nas.tuner.executors.main_guard import MainGuardError
from symbolic_nas.tuner.loop import EvaluatorChangedWarning, TooManyFailuresError, run, trial_seed
from symbolic_nas.tuner.options import SearchOptions

__all__ = [
    "Callback",
    "EvaluatorChangedWarning",
    "MainGuardError",
    "SearchContext",
    "SearchOptions",
    "TooManyFailuresError",
    "evaluator",
    "run",
    "trial_seed",
]
