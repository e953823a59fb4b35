"""Process helpers shared by the tuner's worker processes and learned_search's actors.

A foundation module (layer 0): both the algorithms layer (Ape-X actors) and the tuner
(worker processes) spawn children that must not outlive their parent.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import threading

__all__ = ["exit_with_parent"]


def exit_with_parent() -> None:
    """Ends this child process when its parent dies (even by SIGKILL).

    Call it first thing in a process started by ``multiprocessing``; in a process
    without a ``multiprocessing`` parent it does nothing.

    Example:
        >>> exit_with_parent()  # the main process: no parent to watch
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="symbolic_nas-parent-watch", daemon=True).start()
