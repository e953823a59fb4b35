"""Benchmarks for architecture search: tabular results to search against."""

from symbolic_nas.benchmarks.nb201_table import NasBench201Table

__all__ = ["NasBench201Table"]
