"""Public contract suites that every registered algorithm and space must pass.

Run them over the registries in your own tests, or on your own algorithm or
space before registering it.
"""
