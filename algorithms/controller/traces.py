"""What :meth:`Controller.score <symbolic_nas.algorithms.controller.policy.Controller.score>`
works from and returns: each sequence traced through the codec (its decisions and the
masks of its constrained steps), where each skip step finds its anchors, and the
per-architecture :class:`Scores`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch

from symbolic_nas.space.codec import Codec

__all__ = ["Scores", "Trace", "anchor_indices", "trace_tokens"]

#: A token sequence's decisions, and ``(position, mask)`` of its constrained steps.
Trace = tuple[list[int], list[tuple[int, np.ndarray]]]


@dataclasses.dataclass
class Scores:
    """Per-architecture results of :meth:`Controller.score` (tensors of shape ``[B]``).

    Attributes:
        log_prob: Log-probability of each token sequence.
        entropy: Sum over its steps of the entropy of each step's (masked) distribution.
        skip_kl: Sum over its skip steps of KL(Bernoulli(p) ‖ Bernoulli(target));
            zeros unless a target was given.
        skip_rate: Mean skip probability over its skip steps (0 without any).
        step_log_prob: ``[B, T]``: the log-probability of each token (0 past the end).
        step_max_prob: ``[B, T]``: the highest token probability at each step (no
            gradient; 0 past the end).
        step_decisions: ``[B, T]`` numpy ints: the decision of each step (-1 past the end).
    """

    log_prob: torch.Tensor
    entropy: torch.Tensor
    skip_kl: torch.Tensor
    skip_rate: torch.Tensor
    step_log_prob: torch.Tensor
    step_max_prob: torch.Tensor
    step_decisions: np.ndarray


def trace_tokens(codec: Codec, tokens: Sequence[int], constrained: np.ndarray | None) -> Trace:
    """Decision of every token, and the masks of its constrained positions.

    Args:
        codec: The space.
        tokens: One token sequence.
        constrained: Per decision, whether its valid tokens depend on earlier tokens of
            its group; None when no decision's do.

    Example:
        >>> import symbolic_nas as sn
        >>> codec = sn.encode({"op": sn.oneof(["conv", "pool"]), "k": sn.oneof([3, 5])})
        >>> trace_tokens(codec, [1, 0], None)
        ([0, 1], [])
    """
    if constrained is None:
        return codec.trace(tokens), []
    walker = codec.walker()
    decisions: list[int] = []
    masks: list[tuple[int, np.ndarray]] = []
    for i, token in enumerate(tokens):
        if walker.done:
            raise ValueError(
                f"token sequence too long: the space ends after {i} tokens, but got {len(tokens)}"
            )
        d = walker.decision
        if constrained[d]:
            masks.append((i, walker.mask()))
        decisions.append(d)
        walker.push(token)
    if not walker.done:
        raise ValueError(
            f"token sequence too short: got {len(tokens)} tokens, but decision "
            f"{walker.current.name!r} comes next"
        )
    return decisions, masks


def anchor_indices(
    traces: list[Trace],
    t_max: int,
    *,
    attn: np.ndarray,
    group_start: np.ndarray,
    group_end: np.ndarray,
    src_slot: np.ndarray,
    key_slot: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the flat output bank (``[t_max * B + slots, H]``) holding ``h_source``
    and ``h_K`` of every position (0 where the position is no skip decision)."""
    b = len(traces)
    src = np.zeros((t_max, b), dtype=np.int64)
    cur = np.zeros((t_max, b), dtype=np.int64)
    fallback = t_max * b
    starts, ends = group_start, group_end
    for j, (ds, _) in enumerate(traces):
        stored: dict[int, int] = {}  # slot -> flat row of its anchor step
        current = 0
        for i, d in enumerate(ds):
            if not attn[d]:
                continue
            if starts[d]:
                current = i * b + j
            cur[i, j] = current
            slot = int(src_slot[d])
            src[i, j] = stored.get(slot, fallback + slot)
            if ends[d]:
                stored[int(key_slot[d])] = current
    return src.reshape(-1), cur.reshape(-1)
