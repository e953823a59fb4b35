"""Imports flow one way: space <- algorithms <- storage <- tuner <- review <- cli.

Every ``import`` in the package (top-level and inside functions) is read from the
source with :mod:`ast` and mapped to its layer; importing a module of a higher
layer is a back-edge and fails this test.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# (module prefix, layer); the longest matching prefix wins. ``symbolic_nas`` itself
# (the facade's names) is the top layer, so lower layers may not ``import symbolic_nas``.
LAYERS: dict[str, int] = {
    "symbolic_nas.validation": 0,
    "symbolic_nas.constraints": 0,
    "symbolic_nas.registry": 0,
    "symbolic_nas.processes": 0,
    "symbolic_nas.space": 1,
    "symbolic_nas.spaces": 1,
    "symbolic_nas.training": 1,
    "symbolic_nas.algorithms": 2,
    "symbolic_nas.storage": 3,
    "symbolic_nas.tuner": 4,
    "symbolic_nas.nasbench": 5,
    "symbolic_nas.review": 6,
    "symbolic_nas.api": 7,
    "symbolic_nas.testing": 8,
    "symbolic_nas.cli": 8,
    "symbolic_nas": 8,
}
SOURCES = {"symbolic_nas": ROOT / "symbolic_nas", "symbolic_nas.spaces": ROOT / "spaces",
           "symbolic_nas.algorithms": ROOT / "algorithms"}  # fmt: skip


def layer_of(module: str) -> int:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[best]


def _modules() -> dict[str, pathlib.Path]:
    found: dict[str, pathlib.Path] = {}
    for package, folder in SOURCES.items():
        for file in folder.rglob("*.py"):
            parts = list(file.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = file
    return found


MODULES = _modules()


def imports_of(module: str, file: pathlib.Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import of a symbolic_nas module."""
    package = module if file.name == "__init__.py" else module.rpartition(".")[0]
    result: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(file.read_text(), str(file))):
        if isinstance(node, ast.Import):
            result += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                # ``from pkg import submodule`` imports the submodule; a name, its package.
                result.append((node.lineno, full if full in MODULES else base))
    return [(line, name) for line, name in result if name.split(".")[0] == "symbolic_nas"]


def test_every_module_has_a_layer():
    assert len(MODULES) > 40
    for module in MODULES:
        layer_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_flow_one_way(module):
    mine = layer_of(module)
    back_edges = [
        f"line {line}: {name} (layer {layer_of(name)})"
        for line, name in imports_of(module, MODULES[module])
        if layer_of(name) > mine
    ]
    assert not back_edges, f"{module} (layer {mine}) imports a higher layer: {back_edges}"


def test_the_check_catches_a_back_edge(tmp_path):
    file = tmp_path / "codec.py"
    file.write_text("from symbolic_nas.tuner.loop import run\nimport symbolic_nas\n")
    found = [name for _, name in imports_of("symbolic_nas.space.codec", file)]
    assert [layer_of(n) > layer_of("symbolic_nas.space.codec") for n in found] == [True, True]
