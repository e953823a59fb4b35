"""A space's fingerprint: a hash of its structure (decisions, vocabularies, labels).

The run directory checks it on resume; a weight-sharing pool checks it when it is
used with a space (a pool is bound to the space it was trained on).
"""

from __future__ import annotations

import hashlib
import json
import re

from symbolic_nas.space.codec import Codec

__all__ = ["ADDRESS", "space_fingerprint"]

#: A memory address in a label (``0x7f...``), masked in fingerprints.
ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


def space_fingerprint(codec: Codec) -> str:
    """A hash of a space's structure: decisions, vocabularies, conditions and value labels.

    Memory addresses (``0x7f...``) in labels are masked, since they change from
    process to process; candidates are told apart by their labels (a function
    by its name), not by their code.

    Example:
        >>> import symbolic_nas as sn
        >>> a = space_fingerprint(sn.encode({"k": sn.oneof([3, 5])}))
        >>> a == space_fingerprint(sn.encode({"k": sn.oneof([3, 5])}))
        True
        >>> a == space_fingerprint(sn.encode({"k": sn.oneof([3, 7])}))
        False
    """
    decisions = [
        [
            d.id,
            d.kind,
            d.vocab_size,
            d.parent,
            d.parent_value,
            d.group,
            d.group_index,
            d.group_size,
            d.required,
            d.distinct,
            d.sorted,
            d.low,
            d.high,
            d.scale,
            [ADDRESS.sub("0x?", label) for label in d.fingerprint_labels or d.labels],
        ]
        for d in codec.decisions
    ]
    text = json.dumps(
        {"start": int(codec.start), "decisions": decisions, "next": codec.next_table.tolist()},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
