"""Storage layer: trials, the journal and the run directory.

:class:`Trial` and :class:`SearchResult` are what a search returns; the journal
(:mod:`symbolic_nas.storage.journal`) writes and reads JSON-lines records; the run
directory (:mod:`symbolic_nas.storage.rundir`) holds a run's config, journal and
checkpoint, and replays them on resume.
"""

from symbolic_nas.storage.journal import InMemoryStorage, JournalStorage, Storage
from symbolic_nas.storage.rundir import ResumeError, Run
from symbolic_nas.storage.trial import SearchResult, Trial

__all__ = [
    "InMemoryStorage",
    "JournalStorage",
    "ResumeError",
    "Run",
    "SearchResult",
    "Storage",
    "Trial",
]
