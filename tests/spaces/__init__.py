"""Tests of the registered spaces."""
