"""Benchmarks for architecture search: tabular results to search against."""

from symbolic_nas.nasbench.nasbench201 import NasBench201
from symbolic_nas.nasbench.table import NasBench201Table

__all__ = ["NasBench201", "NasBench201Table"]
