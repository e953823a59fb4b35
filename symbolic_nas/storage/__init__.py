"""Storage layer: trials, the journal and the run directory.

:class:`Trial` (with its :class:`TrialStatus`) and :class:`SearchResult` are what
a search returns; the journal (:mod:`symbolic_nas.storage.journal`) writes and
reads JSON-lines records, whose kinds (:class:`EventKind`), writers and reader
live in :mod:`symbolic_nas.storage.records`; the run directory
(:mod:`symbolic_nas.storage.rundir`) holds a run's config, journal and checkpoint
(and kept weights, :mod:`symbolic_nas.storage.weights`); :func:`load_run`
(:mod:`symbolic_nas.storage.reader`) reads a run without resuming it.
"""

from symbolic_nas.storage.journal import InMemoryStorage, JournalStorage, Storage
from symbolic_nas.storage.reader import load_run
from symbolic_nas.storage.records import EventKind, History, read_history
from symbolic_nas.storage.rundir import ResumeError, Run, RunInUseError
from symbolic_nas.storage.trial import SearchResult, Trial, TrialStatus

__all__ = [
    "EventKind",
    "History",
    "InMemoryStorage",
    "JournalStorage",
    "ResumeError",
    "Run",
    "RunInUseError",
    "SearchResult",
    "Storage",
    "Trial",
    "TrialStatus",
    "load_run",
    "read_history",
]
