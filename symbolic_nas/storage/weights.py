"""Trained children's weights in the run directory (``sn.search(keep_weights=...)``).

A kept trial's weights are its model's ``state_dict`` (tensors moved to the CPU),
saved with ``torch.save`` as ``weights/trial-<id>.pt`` in the run directory, written
atomically (temporary file, ``fsync``, ``os.replace``). Only tensors are stored,
never pickled code: :func:`load_state_dict` loads with ``weights_only=True``.

The worker that trained a child serialises its state dict (:func:`state_dict_bytes`)
and sends the bytes back with the trial's outcome; the driver writes the file
(:func:`save_weights`) before it journals the trial's end, and deletes the files of
trials that dropped out of the kept set (:func:`prune_weights`). So weights are kept
with every executor, Ray actors on other machines included.
"""

from __future__ import annotations

import io
import math
import os
import pathlib
import re
from collections.abc import Iterable
from typing import Any

import torch

from symbolic_nas.storage.files import atomic_write
from symbolic_nas.storage.trial import SearchResult, Trial

__all__ = [
    "WEIGHTS",
    "kept_trial_ids",
    "kept_trials",
    "load_state_dict",
    "prune_weights",
    "save_weights",
    "state_dict_bytes",
    "weights_file",
    "weights_threshold",
]

#: The folder of kept weights in a run directory.
WEIGHTS = "weights"
_FILE = re.compile(r"^trial-(\d+)\.pt$")


def weights_file(run_dir: str | os.PathLike[str], trial_id: int) -> pathlib.Path:
    """Where trial ``trial_id``'s weights are kept in ``run_dir``.

    Example:
        >>> weights_file("runs/a", 7).as_posix()
        'runs/a/weights/trial-7.pt'
    """
    return pathlib.Path(run_dir) / WEIGHTS / f"trial-{int(trial_id)}.pt"


def state_dict_bytes(model: Any) -> bytes:
    """``torch.save`` of ``model.state_dict()`` with every tensor on the CPU.

    Raises:
        TypeError: If ``model`` has no ``state_dict`` (it is not an ``nn.Module``).

    Example:
        >>> import torch.nn as nn
        >>> state = load_state_dict(io.BytesIO(state_dict_bytes(nn.Linear(2, 3))))
        >>> sorted(state), tuple(state["weight"].shape)
        (['bias', 'weight'], (3, 2))
    """
    state_dict = getattr(model, "state_dict", None)
    if not callable(state_dict):
        raise TypeError(
            "`keep_weights` needs the evaluated object to be an nn.Module (with a state_dict), "
            f"but got a {type(model).__name__}"
        )
    state = {
        key: value.detach().cpu() if isinstance(value, torch.Tensor) else value
        for key, value in state_dict().items()
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def save_weights(
    run_dir: str | os.PathLike[str], trial_id: int, data: bytes, *, fsync: bool = True
) -> pathlib.Path:
    """Writes ``data`` (from :func:`state_dict_bytes`) as trial ``trial_id``'s weights."""
    file = weights_file(run_dir, trial_id)
    file.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(file, data, fsync)
    return file


def kept_trials(run_dir: str | os.PathLike[str]) -> list[int]:
    """Ids of the trials whose weights are in ``run_dir``, in id order."""
    folder = pathlib.Path(run_dir) / WEIGHTS
    if not folder.is_dir():
        return []
    found = (_FILE.match(entry.name) for entry in folder.iterdir())
    return sorted(int(match.group(1)) for match in found if match)


def prune_weights(run_dir: str | os.PathLike[str], keep: Iterable[int]) -> list[int]:
    """Deletes the kept weights of every trial not in ``keep``; returns their ids."""
    wanted = set(keep)
    removed = [trial_id for trial_id in kept_trials(run_dir) if trial_id not in wanted]
    for trial_id in removed:
        weights_file(run_dir, trial_id).unlink(missing_ok=True)
    return removed


def load_state_dict(source: str | os.PathLike[str] | io.BytesIO) -> dict[str, Any]:
    """A kept state dict, loaded on the CPU with ``weights_only=True`` (no code runs)."""
    state = torch.load(source, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"kept weights must be a state dict, but got a {type(state).__name__}")
    return state


def _kept_count(keep: str | int) -> int | None:
    """How many of the best trials' weights ``keep`` keeps (None: all)."""
    return None if keep == "all" else 1 if keep == "best" else int(keep)


def kept_trial_ids(trials: Iterable[Trial], keep: str | int) -> list[int]:
    """Ids of the trials whose weights ``keep`` (``"best"``, ``"all"`` or k) keeps.

    The best completed trials by reward (lowest id on ties), as
    :meth:`~symbolic_nas.storage.trial.SearchResult.top` ranks them.

    Example:
        >>> trials = [Trial(i, [0], status="completed", reward=r) for i, r in enumerate([1, 3, 2])]
        >>> kept_trial_ids(trials, "best"), kept_trial_ids(trials, 2), kept_trial_ids(trials, "all")
        ([1], [1, 2], [1, 2, 0])
    """
    finished = list(trials)
    ranked = SearchResult(finished).top(len(finished))
    k = _kept_count(keep)
    return [t.id for t in (ranked if k is None else ranked[:k])]


def weights_threshold(trials: Iterable[Trial], keep: str | int | None) -> float | None:
    """The reward the next trial must reach to be kept (``-inf``: any; None: keep none).

    Example:
        >>> trials = [Trial(i, [0], status="completed", reward=r) for i, r in enumerate([1, 3, 2])]
        >>> [weights_threshold(trials, keep) for keep in ("best", 2, 5, "all", None)]
        [3.0, 2.0, -inf, -inf, None]
    """
    if keep is None:
        return None
    k = _kept_count(keep)
    ranked = SearchResult(list(trials)).top(k) if k is not None else []
    if k is None or len(ranked) < k:
        return -math.inf
    reward = ranked[k - 1].reward
    return -math.inf if reward is None else float(reward)
