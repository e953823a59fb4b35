"""A progress bar for a search (tqdm): finished trials, rate, ETA, best reward, failures.

:class:`ProgressCallback` advances a ``tqdm`` bar by one per finished trial and
shows the best reward so far and the number of failed trials as its postfix.
By default (``disable=None``) the bar is shown only when its stream (stderr
unless ``file`` is given) is a terminal, so logs and CI output stay clean; pass
``disable=False`` to force it on and ``disable=True`` to turn it off. In Jupyter,
``tqdm.auto`` gives the notebook widget, which is shown unless ``disable=True``.
"""

from __future__ import annotations

import math
from typing import IO, Any, ClassVar

from tqdm.auto import tqdm

from symbolic_nas.storage.trial import SearchResult, Trial, TrialStatus
from symbolic_nas.tuner.callbacks import Callback, SearchContext
from symbolic_nas.validation import Interval, Satisfies, validate_params

__all__ = ["ProgressCallback"]


class ProgressCallback(Callback):
    """Shows a search's progress with ``tqdm``.

    On a resumed run the bar starts at the number of trials already finished
    (its rate and ETA count only this session's trials).

    Args:
        total: The planned number of trials; None takes ``context.num_trials``.
        disable: True hides the bar, False shows it, None (default) shows it only
            when the output stream is a terminal.
        desc: The bar's label.
        leave: Keep the finished bar on screen.
        file: The output stream (default: ``sys.stderr``).

    Example:
        >>> import io
        >>> import symbolic_nas as sn
        >>> from symbolic_nas import algorithms
        >>> from symbolic_nas.tuner.callbacks import SearchContext
        >>> from symbolic_nas.storage.trial import Trial
        >>> codec = sn.encode({"k": sn.oneof([3, 5])})
        >>> context = SearchContext(codec=codec, algorithm=algorithms.get("random"), num_trials=2)
        >>> out = io.StringIO()
        >>> bar = ProgressCallback(total=2, disable=False, file=out)
        >>> bar.on_search_start(context)
        >>> bar.on_trial_end(Trial(0, [1], status="completed", reward=0.75), context)
        >>> bar.on_trial_end(Trial(1, [0], status="failed", error="boom"), context)
        >>> bar.on_search_end(SearchResult([]), context)
        >>> "2/2" in out.getvalue() and "best=0.75, failed=1" in out.getvalue()
        True
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "total": [Interval(int, 0, None), None],
        "disable": ["boolean", None],
        "desc": [str],
        "leave": ["boolean"],
        "file": [Satisfies(lambda f: callable(f.write), "a writable text stream"), None],
    }

    def __init__(
        self,
        total: int | None = None,
        *,
        disable: bool | None = None,
        desc: str = "search",
        leave: bool = True,
        file: IO[str] | None = None,
    ):
        validate_params(
            self._parameter_constraints,
            {"total": total, "disable": disable, "desc": desc, "leave": leave, "file": file},
        )
        self.total = total
        self.disable = disable
        self.desc = desc
        self.leave = leave
        self.file = file
        self.bar: tqdm | None = None

    def on_search_start(self, context: SearchContext) -> None:
        self._close()
        best = context.best
        self._best = best.reward if best is not None else None
        self._failed = sum(t.status == TrialStatus.FAILED for t in context.trials)
        self.bar = tqdm(
            total=self.total if self.total is not None else context.num_trials,
            initial=len(context.trials),
            desc=self.desc,
            unit="trial",
            leave=self.leave,
            file=self.file,
            disable=self.disable,
            dynamic_ncols=True,
            postfix=self._postfix(),
        )

    def on_trial_end(self, trial: Trial, context: SearchContext) -> None:
        bar = self.bar
        if bar is None:
            raise RuntimeError("ProgressCallback.on_search_start must be called first")
        changed = False
        reward = trial.reward
        if trial.status == TrialStatus.FAILED:
            self._failed += 1
            changed = True
        elif (
            reward is not None
            and math.isfinite(reward)
            and (self._best is None or reward > self._best)
        ):
            self._best = reward
            changed = True
        if changed:
            bar.set_postfix_str(self._postfix(), refresh=False)
        bar.update(1)

    def on_search_end(self, result: SearchResult, context: SearchContext) -> None:
        self._close()

    def _postfix(self) -> str:
        best = "-" if self._best is None else f"{self._best:.4g}"
        return f"best={best}, failed={self._failed}"

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
