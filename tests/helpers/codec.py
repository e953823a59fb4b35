"""Every valid token sequence of a codec (the codec, controller and round-trip tests)."""

from __future__ import annotations

import symbolic_nas as sn


def all_sequences(codec: sn.Codec) -> list[list[int]]:
    """Every valid token sequence, found by walking the codec's masks."""
    out: list[list[int]] = []

    def walk(prefix: list[int]) -> None:
        step = codec.next_decision(prefix)
        if step is None:
            out.append(prefix)
            return
        for token in step.valid_tokens:
            walk([*prefix, token])

    walk([])
    return out
