"""The Pareto front of a search with several objectives, as a TensorBoard image.

:class:`ParetoPlotCallback` draws the completed trials of a search's first two
objectives (e.g. accuracy against latency), the non-dominated ones highlighted
and joined, and writes it as an image summary under ``<logdir>/pareto`` (the
IMAGES tab) when the search ends and every ``every`` trials. With matplotlib
installed (it is not a dependency) the plot has axes, labels and a legend;
without it, the same picture is rasterised with numpy and encoded as PNG with
``zlib`` (no labels: the tag and a text summary name the axes and their ranges).
"""

from __future__ import annotations

import io
import itertools
import os
import struct
import zlib
from collections.abc import Sequence

import numpy as np
from tensorboard.compat.proto import summary_pb2

from symbolic_nas.review.events import EventFile, text_value
from symbolic_nas.storage.trial import SearchResult, Trial
from symbolic_nas.tuner.callbacks import Callback, SearchContext

__all__ = ["ParetoPlotCallback", "encode_png", "pareto_png"]

_GREY, _RED, _BLACK = (170, 170, 170), (214, 39, 40), (0, 0, 0)


def encode_png(image: np.ndarray) -> bytes:
    """An ``(H, W, 3)`` uint8 RGB array as PNG bytes (zlib only).

    Example:
        >>> encode_png(np.zeros((2, 3, 3), dtype=np.uint8))[:8]
        b'\\x89PNG\\r\\n\\x1a\\n'
    """
    height, width, _ = image.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + image[y].astype(np.uint8).tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 6))
        + chunk(b"IEND", b"")
    )


def _raster(
    points: np.ndarray, front: np.ndarray, size: tuple[int, int] = (320, 480)
) -> np.ndarray:
    height, width = size
    image = np.full((height, width, 3), 255, dtype=np.uint8)
    margin = 24
    image[height - margin, margin : width - 8] = _BLACK  # x axis
    image[8 : height - margin + 1, margin] = _BLACK  # y axis
    low, high = points.min(axis=0), points.max(axis=0)
    span = np.where(high > low, high - low, 1.0)

    def pixel(p: np.ndarray) -> tuple[int, int]:
        x = margin + 6 + (p[0] - low[0]) / span[0] * (width - margin - 20)
        y = height - margin - 6 - (p[1] - low[1]) / span[1] * (height - margin - 20)
        return round(y), round(x)

    def dot(p: np.ndarray, color: tuple[int, int, int], r: int) -> None:
        y, x = pixel(p)
        image[max(0, y - r) : y + r + 1, max(0, x - r) : x + r + 1] = color

    for p in points:
        dot(p, _GREY, 2)
    ordered = front[np.argsort(front[:, 0])] if len(front) else front
    for a, b in itertools.pairwise(ordered):  # the front's staircase
        (ya, xa), (yb, xb) = pixel(a), pixel(b)
        image[min(ya, yb) : max(ya, yb) + 1, xa] = _RED
        image[yb, min(xa, xb) : max(xa, xb) + 1] = _RED
    for p in ordered:
        dot(p, _RED, 3)
    return image


def _matplotlib_png(points: np.ndarray, front: np.ndarray, names: Sequence[str]) -> bytes | None:
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib import pyplot as plt
    except Exception:  # not installed, or no usable backend: the raster is drawn instead
        return None
    figure, axes = plt.subplots(figsize=(4.8, 3.2), dpi=100)
    axes.scatter(points[:, 0], points[:, 1], s=10, c="#aaaaaa", label="trials")
    ordered = front[np.argsort(front[:, 0])]
    axes.step(ordered[:, 0], ordered[:, 1], where="post", c="#d62728", lw=1)
    axes.scatter(ordered[:, 0], ordered[:, 1], s=18, c="#d62728", label="Pareto front")
    axes.set_xlabel(names[0])
    axes.set_ylabel(names[1])
    axes.legend(fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def pareto_png(
    trials: Sequence[Trial], front: Sequence[Trial], names: Sequence[str], *, labels: bool = True
) -> tuple[bytes, int, int] | None:
    """The plot of ``names[0]`` (x) against ``names[1]`` (y) as ``(png, height, width)``.

    None when no trial has both metrics. ``labels=False`` skips matplotlib.

    Example:
        >>> trials = [Trial(i, [i], status="completed", reward=0.0,
        ...                 metrics={"acc": a, "lat": l})
        ...           for i, (a, l) in enumerate([(0.5, 1.0), (0.9, 3.0), (0.4, 2.0)])]
        >>> png, height, width = pareto_png(trials, trials[:2], ["lat", "acc"], labels=False)
        >>> png[:4], height, width
        (b'\\x89PNG', 320, 480)
    """

    def xy(ts: Sequence[Trial]) -> np.ndarray:
        rows = [
            [float(t.metrics[names[0]]), float(t.metrics[names[1]])]
            for t in ts
            if all(isinstance(t.metrics.get(n), (int, float)) for n in names[:2])
        ]
        return np.asarray(rows, dtype=float).reshape(-1, 2)

    points, best = xy(trials), xy(front)
    if not len(points):
        return None
    png = _matplotlib_png(points, best, names) if labels else None
    if png is not None:
        return png, 320, 480
    image = _raster(points, best)
    return encode_png(image), image.shape[0], image.shape[1]


class ParetoPlotCallback(Callback):
    """Writes the Pareto-front plot of a search with objectives to TensorBoard.

    The x axis is the second objective (the cost, e.g. latency), the y axis the
    first (e.g. accuracy), as in the MnasNet and TuNAS papers.

    Args:
        logdir: The TensorBoard log directory (the plot goes to ``<logdir>/pareto``).
        every: Also draw it after every ``every`` completed trials (0: only at the end).
    """

    def __init__(self, logdir: str | os.PathLike[str], *, every: int = 50) -> None:
        if not isinstance(every, int) or isinstance(every, bool) or every < 0:
            raise ValueError(f"`every` must be an int >= 0, but got {every!r}")
        self.logdir = os.fspath(logdir)
        self.every = every
        self._directions: dict[str, str] | None = None
        self._seen = 0

    def on_search_start(self, context: SearchContext) -> None:
        self._directions = (context.config or {}).get("objectives", {}).get("directions")
        self._seen = 0

    def on_trial_end(self, trial: Trial, context: SearchContext) -> None:
        self._seen += 1
        if self.every and self._seen % self.every == 0:
            self._draw(SearchResult(list(context.trials), objectives=self._directions))

    def on_search_end(self, result: SearchResult, context: SearchContext) -> None:
        self._draw(result)

    def _draw(self, result: SearchResult) -> None:
        directions = result.objectives or self._directions
        if not directions or len(directions) < 2:
            return
        names = list(directions)
        front = result.pareto_front(directions)
        drawn = pareto_png(result.completed, front, [names[1], names[0]])
        if drawn is None:
            return
        png, height, width = drawn
        image = summary_pb2.Summary.Image(
            height=height, width=width, colorspace=3, encoded_image_string=png
        )
        tag = f"pareto/{names[0]}_vs_{names[1]}"
        caption = (
            f"x: {names[1]} ({directions[names[1]]}imised), y: {names[0]} "
            f"({directions[names[0]]}imised); red: the {len(front)} trials of the Pareto front "
            f"({', '.join(str(t.id) for t in front[:20])}{' ...' if len(front) > 20 else ''})"
        )
        with EventFile(os.path.join(self.logdir, "pareto")) as events:
            events.write(
                [summary_pb2.Summary.Value(tag=tag, image=image), text_value(tag, caption)],
                step=len(result.trials),
            )
