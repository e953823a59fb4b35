"""Benchmarks for architecture search: tabular results to search against."""

from symbolic_nas.benchmarks.nasbench201 import NasBench201
from symbolic_nas.benchmarks.nb201_table import NasBench201Table

__all__ = ["NasBench201", "NasBench201Table"]
