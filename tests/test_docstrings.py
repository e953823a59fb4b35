"""Every docstring example in the package runs (imported by package name, so the
folders mapped with package-dir are not imported twice)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import symbolic_nas


def _modules() -> list[str]:
    names = ["symbolic_nas"]
    for info in pkgutil.walk_packages(symbolic_nas.__path__, "symbolic_nas."):
        names.append(info.name)
    for package in ("symbolic_nas.algorithms", "symbolic_nas.spaces"):
        module = importlib.import_module(package)
        names.append(package)
        names += [info.name for info in pkgutil.walk_packages(module.__path__, package + ".")]
    return sorted(set(names))


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
