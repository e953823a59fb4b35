"""Data shipped with symbolic_nas (see ``README.md`` in this folder for sources)."""

from symbolic_nas.training.data.mnist import MnistSplits, load_mnist5k

__all__ = ["MnistSplits", "load_mnist5k"]
