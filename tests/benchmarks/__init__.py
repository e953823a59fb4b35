"""Tests of NAS-Bench-201 and the benchmark scripts."""
