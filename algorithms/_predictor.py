"""A performance predictor over token sequences: a codec-only encoding and an MLP ensemble.

Shared by the predictor-guided algorithms (``bananas`` and the controllers'
``predictor`` option); private to the algorithms layer.

Encoding (:class:`OneHotEncoder`): one block of ``vocab_size`` entries per
decision of the codec, the chosen token's entry set to 1 for each *active*
decision and the whole block left at 0 for a decision the sequence does not
visit (an inactive branch), so two sequences that differ only in what they
never use encode alike. It needs nothing but the codec, so it works on every
space. (BANANAS' path encoding needs a cell's graph; no registered space
declares one to the codec, so none is used.)

Predictor (:class:`EnsemblePredictor`): ``ensemble_size`` independently
initialised two-hidden-layer ReLU networks, trained together (one batched
numpy computation) by full-batch Adam on the mean squared error of the
standardised rewards, as in BANANAS (White, Neiswanger and Savani, AAAI 2021:
an ensemble of feed-forward networks, whose spread gives the uncertainty).
Every fit starts from fresh weights drawn from a generator seeded by ``seed``
and the number of rewards, so a predictor refitted on the same history after a
resume gives the same predictions: algorithms store the history, not weights.
On NAS-Bench-201 (30 inputs, up to a few hundred rewards) a fit takes a few
milliseconds on one core (``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from symbolic_nas.space.codec import Codec
from symbolic_nas.validation import Interval, Options, parameter_error, validate_params

__all__ = ["ACQUISITIONS", "EnsemblePredictor", "OneHotEncoder", "Screen", "acquire"]

#: A refit is also due only once the history grew by this share since the last fit,
#: so that the cost of long searches stays bounded (about 60 fits up to 1,000 rewards).
REFIT_GROWTH = 0.05

#: Acquisition functions: ``"its"`` (independent Thompson sampling) or ``"mean"``.
ACQUISITIONS = ("its", "mean")


class OneHotEncoder:
    """One-hot tokens per decision, inactive decisions all zero (see the module docs).

    Example:
        >>> import symbolic_nas as sn
        >>> codec = sn.encode({"a": sn.oneof([1, 2]), "b": sn.oneof([3, 4, 5])})
        >>> OneHotEncoder(codec).encode([[1, 2]]).tolist()
        [[0.0, 1.0, 0.0, 0.0, 1.0]]
    """

    def __init__(self, codec: Codec):
        self.codec = codec
        sizes = [int(v) for v in codec.vocab_sizes]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.width = int(sum(sizes))

    def encode(self, sequences: Sequence[Sequence[int]]) -> np.ndarray:
        """A ``(len(sequences), width)`` float32 array (each sequence must be valid)."""
        out = np.zeros((len(sequences), self.width), dtype=np.float32)
        for row, tokens in enumerate(sequences):
            decisions = self.codec.trace(tokens)
            out[row, self.offsets[decisions] + np.asarray(tokens, dtype=np.int64)] = 1.0
        return out


class EnsemblePredictor:
    """An ensemble of small MLPs predicting a reward and its uncertainty.

    Args:
        ensemble_size: Networks in the ensemble (at least 1; BANANAS uses 5).
        hidden_size: Units of each of the two hidden layers.
        steps: Full-batch Adam steps per fit.
        learning_rate: Adam's learning rate.
        weight_decay: L2 penalty on the weights.
        seed: Seed of the weights' initialisation.

    Example:
        >>> import numpy as np
        >>> x = np.eye(4, dtype=np.float32)
        >>> predictor = EnsemblePredictor(seed=0).fit(x, [1.0, 2.0, 3.0, 4.0])
        >>> mean, std = predictor.predict(x)
        >>> bool(mean[3] > mean[0]), std.shape
        (True, (4,))
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "ensemble_size": [Interval(int, 1, None)],
        "hidden_size": [Interval(int, 1, None)],
        "steps": [Interval(int, 1, None)],
        "learning_rate": [Interval(float, 0, None, closed="neither")],
        "weight_decay": [Interval(float, 0, None, closed="left")],
        "seed": [Interval(int, None, None), None],
    }

    def __init__(
        self,
        *,
        ensemble_size: int = 5,
        hidden_size: int = 32,
        steps: int = 100,
        learning_rate: float = 0.01,
        weight_decay: float = 1e-4,
        seed: int | None = 0,
    ):
        validate_params(
            self._parameter_constraints,
            {
                "ensemble_size": ensemble_size,
                "hidden_size": hidden_size,
                "steps": steps,
                "learning_rate": learning_rate,
                "weight_decay": weight_decay,
                "seed": seed,
            },
        )
        self.ensemble_size = ensemble_size
        self.hidden_size = hidden_size
        self.steps = steps
        self.learning_rate = float(learning_rate)
        self.weight_decay = float(weight_decay)
        self.seed = 0 if seed is None else seed
        self._params: list[np.ndarray] | None = None
        self._scale = (0.0, 1.0)

    @property
    def fitted(self) -> bool:
        return self._params is not None

    def fit(self, x: np.ndarray, y: Sequence[float]) -> EnsemblePredictor:
        """Fits fresh networks to ``x`` (n, width) and the rewards ``y`` (n finite floats).

        Raises:
            ValueError: Fewer than 2 rewards, a non-finite one, or ``x`` and ``y``
                differ in length.
        """
        target = np.asarray(y, dtype=np.float64)
        if target.ndim != 1 or len(target) < 2:
            raise parameter_error("rewards", "a history of at least 2 rewards", len(target))
        if len(x) != len(target):
            raise ValueError(
                f"`x` must have one row per reward ({len(target)}), but got {len(x)} rows"
            )
        if not np.isfinite(target).all():
            raise ValueError(f"`y` must hold finite rewards, but got {target.tolist()!r}")
        mean, std = float(target.mean()), float(target.std())
        std = std if std > 1e-12 * max(1.0, abs(mean)) else 1.0
        self._scale = (mean, std)
        t = ((target - mean) / std).astype(np.float32)[None, :, None]  # (1, n, 1)
        rng = np.random.default_rng([abs(self.seed), len(target)])
        flat, params = self._init(rng, x.shape[1])
        grad = np.zeros_like(flat)
        grads = self._views(grad, x.shape[1])
        m, v = np.zeros_like(flat), np.zeros_like(flat)
        b1, b2, eps, lr, wd = 0.9, 0.999, 1e-8, self.learning_rate, self.weight_decay
        xb = x[None, :, :].astype(np.float32)
        xt = xb.transpose(0, 2, 1)
        scale = np.float32(2.0 / len(target))
        w1, c1, w2, c2, w3, c3 = params
        g_w1, g_c1, g_w2, g_c2, g_w3, g_c3 = grads
        for step in range(1, self.steps + 1):
            h1 = np.maximum(xb @ w1 + c1, 0.0)  # (e, n, h)
            h2 = np.maximum(h1 @ w2 + c2, 0.0)
            g_out = (h2 @ w3 + c3 - t) * scale  # (e, n, 1)
            np.matmul(h2.transpose(0, 2, 1), g_out, out=g_w3)
            g_c3[...] = g_out.sum(axis=1, keepdims=True)
            g_h2 = (g_out @ w3.transpose(0, 2, 1)) * (h2 > 0)
            np.matmul(h1.transpose(0, 2, 1), g_h2, out=g_w2)
            g_c2[...] = g_h2.sum(axis=1, keepdims=True)
            g_h1 = (g_h2 @ w2.transpose(0, 2, 1)) * (h1 > 0)
            np.matmul(xt, g_h1, out=g_w1)
            g_c1[...] = g_h1.sum(axis=1, keepdims=True)
            grad += wd * flat  # L2 on every parameter (biases too: one flat step)
            # Adam on the flat buffer, in place (the views above follow it).
            m *= b1
            m += (1 - b1) * grad
            v *= b2
            v += (1 - b2) * grad * grad
            correction = math.sqrt(1 - b2**step) / (1 - b1**step)
            flat -= (lr * correction) * m / (np.sqrt(v) + eps)
        self._params = params
        return self

    def _shapes(self, width: int) -> list[tuple[int, ...]]:
        e, h = self.ensemble_size, self.hidden_size
        return [(e, width, h), (e, 1, h), (e, h, h), (e, 1, h), (e, h, 1), (e, 1, 1)]

    def _views(self, flat: np.ndarray, width: int) -> list[np.ndarray]:
        """The parameters (or gradients) as views into one flat buffer."""
        out, start = [], 0
        for shape in self._shapes(width):
            size = math.prod(shape)
            out.append(flat[start : start + size].reshape(shape))
            start += size
        return out

    def _init(self, rng: np.random.Generator, width: int) -> tuple[np.ndarray, list[np.ndarray]]:
        shapes = self._shapes(width)
        flat = np.empty(sum(math.prod(s) for s in shapes), dtype=np.float32)
        params = self._views(flat, width)
        for i, p in enumerate(params):
            fan_in = shapes[i - i % 2][1]  # a bias takes its weight's fan-in
            bound = 1.0 / math.sqrt(fan_in)  # torch.nn.Linear's initialisation
            p[...] = rng.uniform(-bound, bound, p.shape)
        return flat, params

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ensemble's mean and standard deviation per row of ``x``, in reward units.

        Raises:
            RuntimeError: The predictor was never fitted.
        """
        if self._params is None:
            raise RuntimeError(
                "`predictor` must be fitted on a history of rewards before it predicts, "
                "but got one with no history"
            )
        w1, c1, w2, c2, w3, c3 = self._params
        h1 = np.maximum(x[None, :, :].astype(np.float32) @ w1 + c1, 0.0)
        h2 = np.maximum(h1 @ w2 + c2, 0.0)
        out = (h2 @ w3 + c3)[:, :, 0].astype(np.float64)  # (e, n)
        mean, std = self._scale
        return out.mean(axis=0) * std + mean, out.std(axis=0) * std


def acquire(mean: np.ndarray, std: np.ndarray, acquisition: str, rng: random.Random) -> np.ndarray:
    """Acquisition values of candidates: a draw from ``N(mean, std)`` per candidate
    (independent Thompson sampling, BANANAS') or the mean.

    Example:
        >>> import random
        >>> import numpy as np
        >>> acquire(np.array([1.0, 2.0]), np.zeros(2), "its", random.Random(0)).tolist()
        [1.0, 2.0]
    """
    if acquisition not in ACQUISITIONS:
        raise parameter_error("acquisition", f"one of {ACQUISITIONS}", acquisition)
    if acquisition == "mean":
        return mean
    noise = np.array([rng.gauss(0.0, 1.0) for _ in range(len(mean))])
    return mean + std * noise


#: The constraints of ``acquisition`` arguments.
ACQUISITION_CONSTRAINTS = [Options(list(ACQUISITIONS))]


class Screen:
    """Ranks candidates by a predictor fitted on a growing history.

    The predictor is refitted when the history has grown by ``refit_every``
    rewards and by :data:`REFIT_GROWTH` of its length since the last fit (and at
    the first pick). The history is the
    caller's (it stores it, in order); a fit is deterministic given the seed and
    the history, so after :meth:`forget` (a resume) the next pick refits on the
    same prefix of the history as the last fit did, and predicts the same.

    Args:
        codec: The space's codec (for the encoding).
        refit_every: New rewards that trigger a refit (1: every new reward).
        seed: Seed of the predictor's initialisation.
        **predictor: :class:`EnsemblePredictor`'s hyperparameters.

    Example:
        >>> import random
        >>> import symbolic_nas as sn
        >>> codec = sn.encode([sn.oneof([0, 1, 2]) for _ in range(3)])
        >>> screen = Screen(codec, seed=0)
        >>> history = [([a, b, 0], float(a + b)) for a in range(3) for b in range(3)]
        >>> pick, predicted = screen.pick(history, [[0, 0, 1], [2, 2, 1]], "mean", random.Random(0))
        >>> pick
        1
    """

    def __init__(
        self, codec: Codec, *, refit_every: int = 1, seed: int | None = 0, **predictor: Any
    ):
        validate_params({"refit_every": [Interval(int, 1, None)]}, {"refit_every": refit_every})
        self.refit_every = refit_every
        self.encoder = OneHotEncoder(codec)
        self.predictor = EnsemblePredictor(seed=seed, **predictor)
        self.fitted_on = -1  # history length of the last fit
        self.fits = 0  # fits on a longer history than the one before
        self.seconds = 0.0  # spent fitting

    def forget(self) -> None:
        """Drops the weights (they are refitted from the history when next needed)."""
        self.predictor = EnsemblePredictor(
            ensemble_size=self.predictor.ensemble_size,
            hidden_size=self.predictor.hidden_size,
            steps=self.predictor.steps,
            learning_rate=self.predictor.learning_rate,
            weight_decay=self.predictor.weight_decay,
            seed=self.predictor.seed,
        )

    def fit(self, history: Sequence[tuple[Sequence[int], float]]) -> None:
        """Fits the predictor to ``(tokens, reward)`` pairs when due (see the class docs).

        Raises:
            ValueError: The history holds fewer than 2 rewards.
        """
        step = max(self.refit_every, math.ceil(REFIT_GROWTH * self.fitted_on))
        due = self.fitted_on < 0 or len(history) - self.fitted_on >= step
        if not due and self.predictor.fitted:
            return
        used = history if due else history[: self.fitted_on]
        start = time.perf_counter()
        x = self.encoder.encode([list(t) for t, _ in used])
        self.predictor.fit(x, [r for _, r in used])
        self.fits += due
        self.fitted_on = len(used)
        self.seconds += time.perf_counter() - start

    def pick(
        self,
        history: Sequence[tuple[Sequence[int], float]],
        candidates: Sequence[Sequence[int]],
        acquisition: str,
        rng: random.Random,
    ) -> tuple[int, np.ndarray]:
        """The index of the candidate with the highest acquisition value, and every
        candidate's predicted mean reward (fits on ``history`` first when needed).

        Raises:
            ValueError: The history holds fewer than 2 rewards, or no candidate is given.
        """
        if not candidates:
            raise parameter_error("candidates", "a non-empty list of token sequences", [])
        self.fit(history)
        mean, std = self.predictor.predict(self.encoder.encode(candidates))
        return int(np.argmax(acquire(mean, std, acquisition, rng))), mean
