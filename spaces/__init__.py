"""Ready-made search spaces (installed as ``symbolic_nas.spaces``).

Each space is ordinary PyTorch code annotated with placeholders; get one by
name with ``spaces.get(name, **kwargs)`` and the tiny forward call its models
are checked with by the contract suite with ``spaces.example(name, **kwargs)``.

========================  =====================================================
``zoph_le_cnn``           Zoph & Le (2017) CNN: filters, kernels, (strides), skips
``nas_rnn_cell``          Zoph & Le (2017) recurrent cell: a tree with a cell state
``metaqnn``               Baker et al. (2017) MetaQNN layer sequences (conditional)
``nasbench201``           Dong & Yang (2020) NAS-Bench-201 cell (tokens = op codes)
========================  =====================================================

Example:
    >>> from symbolic_nas import spaces
    >>> spaces.available()
    ['metaqnn', 'nas_rnn_cell', 'nasbench201', 'zoph_le_cnn']
"""

from symbolic_nas.spaces import metaqnn as metaqnn  # registers "metaqnn"
from symbolic_nas.spaces import nas_rnn_cell as nas_rnn_cell  # registers "nas_rnn_cell"
from symbolic_nas.spaces import nasbench201 as nasbench201  # registers "nasbench201"
from symbolic_nas.spaces import zoph_le_cnn as zoph_le_cnn  # registers "zoph_le_cnn"
from symbolic_nas.spaces.examples import Example, example, register_example
from symbolic_nas.spaces.registry import available, get, parameters, register

__all__ = [
    "Example",
    "available",
    "example",
    "get",
    "parameters",
    "register",
    "register_example",
]
