"""Space layer: authoring spaces and compiling them into codecs.

Placeholders, :func:`symbolize` with provenance, :func:`annotate`, the decision
model, the compiler, the build templates, the :class:`Codec` with its walker, and
:func:`materialize`. Together with the DNA adapters of the algorithms, this is the
only layer that imports PyGlove.

Example:
    >>> import random
    >>> from symbolic_nas.space import encode, oneof
    >>> codec = encode({"k": oneof([3, 5])})
    >>> codec.decode(codec.random_tokens(random.Random(0)))["k"] in (3, 5)
    True
"""

from symbolic_nas.space.annotate import Annotated, annotate, keep
from symbolic_nas.space.codec import Codec, Decision, Step, Walker, encode
from symbolic_nas.space.materialize import materialize
from symbolic_nas.space.placeholders import floatv, intv, manyof, oneof, permutate, subset
from symbolic_nas.space.symbolic import Call, symbolize

__all__ = [
    "Annotated",
    "Call",
    "Codec",
    "Decision",
    "Step",
    "Walker",
    "annotate",
    "encode",
    "floatv",
    "intv",
    "keep",
    "manyof",
    "materialize",
    "oneof",
    "permutate",
    "subset",
    "symbolize",
]
