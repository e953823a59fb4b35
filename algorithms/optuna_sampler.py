"""Optuna's samplers (TPE, GP, NSGA-II, ...) as symbolic_nas algorithms, through ask/tell.

Each proposal is one trial of an in-memory Optuna study
(``optuna.create_study(sampler=..., direction="maximize")``): ``study.ask()``,
then the codec is walked decision by decision (:meth:`Codec.walker
<symbolic_nas.space.codec.Codec.walker>`), so a conditional decision is
asked only when the choices before it make it active, and the reward is told
with ``study.tell`` when it arrives, in any order (the proposal's
``meta["trial"]`` is its trial number). A failed proposal (``None``/NaN/inf)
is told as ``TrialState.FAIL``; an unanswered one stays ``RUNNING``.

How decisions become Optuna parameters (named by :attr:`Decision.name
<symbolic_nas.space.decisions.Decision.name>`):

* a categorical decision: ``CategoricalDistribution`` over its tokens
  ``[0, 1, ..., vocab_size - 1]`` (tokens, not labels, so a saved study stays
  loadable when labels change);
* a float decision: ``FloatDistribution(low, high, log=scale == "log")``:
  the sampler models the value as continuous, the trial uses that exact value
  (the proposal's ``floats``, see :mod:`symbolic_nas.space.floats`) and the
  proposal's token is the bin nearest to it (on the float's scale);
  ``meta["params"]`` keeps the raw values too;
* ``manyof``/``permutate`` picks and anchor-form members (whose valid tokens
  depend on the earlier picks of their group): one categorical per position
  over the *whole* vocabulary (Optuna refuses a categorical whose choices
  change between trials), and a value the mask forbids is replaced by the
  nearest allowed token (ties go to the lower one); a position with a single
  allowed token is not asked at all.

Resuming: ``state_dict`` keeps every trial (parameters, distributions, state,
value, system attributes) and the states of the sampler's random generators;
``load_state_dict`` replays the trials, in order, into a fresh study with
``study.add_trial(optuna.trial.create_trial(...))`` and restores the
generators, so a resumed TPE, random or NSGA-II search proposes exactly what
the original would have. (Caches a sampler keeps besides its generators, such
as ``GPSampler``'s fitted kernel parameters, restart empty.)

Optuna is an optional dependency (``pip install symbolic-nas[optuna]``): it is
imported when the algorithm is set up, so the package works without it.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import numpy as np

from symbolic_nas.algorithms.base import Algorithm, Proposal, Proposed, register
from symbolic_nas.space.codec import FLOAT
from symbolic_nas.space.walker import nearest_bin
from symbolic_nas.validation import InstanceOf, Options, validate_params

__all__ = ["OptunaSearch", "TPESearch"]

#: Sampler names and their class in ``optuna.samplers``.
SAMPLERS: dict[str, str] = {
    "tpe": "TPESampler",
    "gp": "GPSampler",
    "nsgaii": "NSGAIISampler",
    "nsgaiii": "NSGAIIISampler",
    "cmaes": "CmaEsSampler",
    "qmc": "QMCSampler",
    "random": "RandomSampler",
}


def _import_optuna() -> Any:
    try:
        import optuna
    except ImportError as e:
        raise ImportError(
            "the 'optuna' algorithm needs Optuna: pip install 'symbolic-nas[optuna]' "
            f"(or pip install optuna) ({e})"
        ) from None
    return optuna


@register("optuna")
class OptunaSearch(Algorithm):
    """Any Optuna sampler over a space's decisions (ask/tell; see the module docstring).

    Reference (the default sampler, TPE): J. Bergstra, R. Bardenet, Y. Bengio and
    B. Kégl, "Algorithms for Hyper-Parameter Optimization", NeurIPS 2011.

    Args:
        sampler: A name (``"tpe"``, ``"gp"``, ``"nsgaii"``, ``"nsgaiii"``,
            ``"cmaes"``, ``"qmc"``, ``"random"``), or a callable called as
            ``sampler(seed=seed, **sampler_options)`` that returns an Optuna
            sampler (a sampler class such as ``optuna.samplers.TPESampler``, or a
            function). Not an instance: ``setup`` makes a new one, so that every
            run starts over from its seed.
        sampler_options: Keyword arguments for the sampler (e.g.
            ``{"n_startup_trials": 5, "multivariate": True}``).
        seed: Seed given to the sampler (None: unseeded).

    Example:
        >>> import symbolic_nas as sn
        >>> from symbolic_nas import algorithms
        >>> algo = algorithms.get("optuna", sampler="tpe", seed=0)
        >>> algo.setup(sn.encode({"k": sn.oneof([3, 5, 7]), "lr": sn.floatv(0.1, 1.0)}))
        >>> p = algo.propose()
        >>> algo.feedback(p, 0.5)
        >>> len(p.tokens), algo.study.trials[0].state.name
        (2, 'COMPLETE')
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **Algorithm._parameter_constraints,
        "sampler": [Options(tuple(SAMPLERS)), "callable"],
        "sampler_options": [InstanceOf(dict, "a dict of keyword arguments"), None],
    }

    def __init__(
        self,
        *,
        sampler: str | Callable[..., Any] = "tpe",
        sampler_options: dict[str, Any] | None = None,
        seed: int | None = 0,
    ):
        validate_params(
            self._parameter_constraints,
            {"sampler": sampler, "sampler_options": sampler_options},
        )
        super().__init__(seed=seed)
        self.sampler = sampler
        self.sampler_options = dict(sampler_options or {})
        self._study: Any = None

    # ------------------------------------------------------------------ public

    @property
    def study(self) -> Any:
        """The ``optuna.Study`` (after :meth:`setup`)."""
        if self._study is None:
            raise RuntimeError(f"{type(self).__name__}.setup(codec) must be called first")
        return self._study

    @property
    def version(self) -> int:
        """Number of rewards told to the study."""
        return self.num_feedback - self.num_failed

    # ------------------------------------------------------------------ hooks

    def _make_sampler(self, optuna: Any) -> Any:
        factory = self.sampler
        if isinstance(factory, str):
            factory = getattr(optuna.samplers, SAMPLERS[factory])
        sampler = factory(seed=self.seed, **self.sampler_options)
        if not isinstance(sampler, optuna.samplers.BaseSampler):
            raise TypeError(
                "`sampler` must return an optuna sampler when called as "
                f"sampler(seed=..., **sampler_options), but got {sampler!r}"
            )
        return sampler

    def _setup(self) -> None:
        optuna = _import_optuna()
        self._optuna = optuna
        self._study = self._new_study()
        self._names = {d.name: d for d in self.codec.decisions}

    def _propose(self) -> Proposed:
        trial = self.study.ask()
        walker = self.codec.walker()
        floats: dict[int, float] = {}
        while not walker.done:
            dec = walker.current
            valid = walker.valid_tokens()
            if len(valid) == 1:
                walker.push(valid[0])
                continue
            if dec.kind == FLOAT:
                assert dec.low is not None and dec.high is not None
                value = trial.suggest_float(dec.name, dec.low, dec.high, log=dec.scale == "log")
                floats[dec.index] = value
                walker.push(nearest_bin(dec, value))
            else:
                token = trial.suggest_categorical(dec.name, list(range(dec.vocab_size)))
                walker.push(token if token in valid else _nearest(valid, token))
        return walker.tokens, {"trial": trial.number, "params": dict(trial.params)}, floats

    def _feedback(self, proposal: Proposal, reward: float) -> None:
        self._tell(proposal, values=reward)

    def _failed(self, proposal: Proposal) -> None:
        self._tell(proposal, state=self._optuna.trial.TrialState.FAIL)

    def _tell(self, proposal: Proposal, **kwargs: Any) -> None:
        with _quiet(self._optuna):
            self.study.tell(int(proposal.meta["trial"]), **kwargs)

    def _new_study(self) -> Any:
        with _quiet(self._optuna):
            return self._optuna.create_study(
                sampler=self._make_sampler(self._optuna), direction="maximize"
            )

    def _state_dict(self) -> dict[str, Any]:
        to_json = self._optuna.distributions.distribution_to_json
        trials = []
        for t in self.study.get_trials(deepcopy=False):
            trials.append(
                {
                    "number": t.number,
                    "state": t.state.name,
                    "value": t.value,
                    "params": dict(t.params),
                    "distributions": {k: to_json(d) for k, d in t.distributions.items()},
                    "system_attrs": dict(t.system_attrs),
                    "user_attrs": dict(t.user_attrs),
                }
            )
        return copy.deepcopy(  # a snapshot: samplers may keep lists in their attributes
            {
                "sampler": self.sampler if isinstance(self.sampler, str) else None,
                "trials": trials,
                # Samplers' caches (NSGA-II's parent populations) live in the study's system attrs.
                "system_attrs": dict(
                    self.study._storage.get_study_system_attrs(self.study._study_id)
                ),
                "random_states": _random_states(self.study.sampler),
            }
        )

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        mine = self.sampler if isinstance(self.sampler, str) else None
        if state["sampler"] != mine:
            raise ValueError(
                f"`sampler` must match the saved algorithm's ({state['sampler']!r}), "
                f"but got {mine!r}"
            )
        optuna = self._optuna
        from_json = optuna.distributions.json_to_distribution
        study = self._new_study()
        for t in state["trials"]:
            unknown = sorted(set(t["params"]) - set(self._names))
            if unknown:
                raise ValueError(
                    f"`state` must come from a study of this space, but its trial "
                    f"{t['number']} has parameters {unknown} that no decision is named"
                )
            study_state = optuna.trial.TrialState[t["state"]]
            study.add_trial(
                optuna.trial.create_trial(
                    state=study_state,
                    value=t["value"] if study_state == optuna.trial.TrialState.COMPLETE else None,
                    params=dict(t["params"]),
                    distributions={k: from_json(d) for k, d in t["distributions"].items()},
                    system_attrs=dict(t["system_attrs"]),
                    user_attrs=dict(t["user_attrs"]),
                )
            )
        for key, value in state["system_attrs"].items():
            study._storage.set_study_system_attr(study._study_id, key, value)
        _load_random_states(study.sampler, state["random_states"])
        self._study = study

    def __repr__(self) -> str:
        sampler = self.sampler if isinstance(self.sampler, str) else _name(self.sampler)
        return f"{type(self).__name__}(sampler={sampler!r}, seed={self.seed})"


@register("tpe")
class TPESearch(OptunaSearch):
    """Optuna's TPE sampler: ``algorithm="tpe"`` is ``algorithms.get("optuna", sampler="tpe")``.

    Reference: J. Bergstra, R. Bardenet, Y. Bengio and B. Kégl, "Algorithms for
    Hyper-Parameter Optimization", NeurIPS 2011.

    Args:
        sampler_options: Keyword arguments of ``optuna.samplers.TPESampler``.
        seed: Seed given to the sampler (None: unseeded).

    Example:
        >>> import symbolic_nas as sn
        >>> from symbolic_nas import algorithms
        >>> algo = algorithms.get("tpe", sampler_options={"n_startup_trials": 3}, seed=1)
        >>> algo.setup(sn.encode({"k": sn.oneof([3, 5, 7])}))
        >>> type(algo.study.sampler).__name__
        'TPESampler'
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        k: v for k, v in OptunaSearch._parameter_constraints.items() if k != "sampler"
    }

    def __init__(self, *, sampler_options: dict[str, Any] | None = None, seed: int | None = 0):
        validate_params(self._parameter_constraints, {"sampler_options": sampler_options})
        super().__init__(sampler="tpe", sampler_options=sampler_options, seed=seed)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seed={self.seed})"


# ---------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _quiet(optuna: Any) -> Iterator[None]:
    """Optuna's logging at WARNING (not one INFO line per study and per trial)."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)


def _nearest(valid: list[int], token: int) -> int:
    """The allowed token nearest to ``token`` (the lower one on ties)."""
    return min(valid, key=lambda t: (abs(t - token), t))


def _name(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def _walk_random_states(obj: Any, path: str, seen: set[int], out: list[tuple[str, Any]]) -> None:
    """Collects ``(path, generator)`` for every numpy generator inside an Optuna object."""
    for key in sorted(vars(obj)):
        value = vars(obj)[key]
        where = f"{path}.{key}" if path else key
        if isinstance(value, (np.random.RandomState, np.random.Generator)):
            if id(value) not in seen:
                seen.add(id(value))
                out.append((where, value))
        elif value is None and type(obj).__name__ == "LazyRandomState":
            out.append((where, None))
        elif (
            type(value).__module__.startswith("optuna")
            and hasattr(value, "__dict__")
            and id(value) not in seen
        ):
            seen.add(id(value))
            _walk_random_states(value, where, seen, out)


def _random_states(sampler: Any) -> list[list[Any]]:
    """The states of the sampler's numpy generators, as JSON-able ``[path, state]``."""
    found: list[tuple[str, Any]] = []
    _walk_random_states(sampler, "", set(), found)
    states: list[list[Any]] = []
    for path, rng in found:
        if rng is None:
            states.append([path, None])
        elif isinstance(rng, np.random.RandomState):
            name, keys, pos, has_gauss, gauss = rng.get_state(legacy=True)
            states.append([path, [name, [int(k) for k in keys], pos, has_gauss, gauss]])
        else:
            states.append([path, {"bit_generator": rng.bit_generator.state}])
    return states


def _load_random_states(sampler: Any, states: list[list[Any]]) -> None:
    for path, state in states:
        *parents, attr = path.split(".")
        owner = sampler
        for key in parents:
            owner = getattr(owner, key)
        if state is None:
            setattr(owner, attr, None)
        elif isinstance(state, dict):
            getattr(owner, attr).bit_generator.state = state["bit_generator"]
        else:
            rng = getattr(owner, attr, None)
            if not isinstance(rng, np.random.RandomState):
                rng = np.random.RandomState()
                setattr(owner, attr, rng)
            name, keys, pos, has_gauss, gauss = state
            rng.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
