"""Type-checks symbolic_nas with mypy under the module names it is installed as.

``spaces/`` and ``algorithms/`` are installed as ``symbolic_nas.spaces`` and
``symbolic_nas.algorithms`` through setuptools' ``package-dir``. mypy names a module
after its folders, so ``mypy spaces`` would check ``spaces.*`` and ``mypy -p
symbolic_nas`` could not find ``symbolic_nas.spaces`` at all (the editable install
reaches it through an import hook, which mypy does not run). This script reads
``[tool.setuptools] package-dir`` and ``packages`` from ``pyproject.toml``, gives mypy
every ``.py`` file with its installed module name (``spaces/examples.py`` is checked
as ``symbolic_nas.spaces.examples``) and uses the ``[tool.mypy]`` settings there.
Messages name the files in the repository. A folder of Python files that ``packages``
does not list is an error: setuptools would not install it.

Usage (from anywhere; extra files are checked as top-level modules named after them)::

    .venv/bin/python scripts/typecheck.py [FILE.py ...] [-- MYPY OPTION ...]
"""

from __future__ import annotations

import os
import pathlib
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: mypy itself depends on tomli there
    import tomli as tomllib

from mypy import build
from mypy.errors import CompileError
from mypy.main import process_options
from mypy.modulefinder import BuildSource

ROOT = pathlib.Path(__file__).resolve().parents[1]


def package_sources(root: pathlib.Path = ROOT) -> tuple[list[BuildSource], list[str]]:
    """Every module of the distribution as a mypy source (paths relative to ``root``),
    and the layout problems found."""
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders: dict[str, str] = config["package-dir"]
    listed = set(config["packages"])
    sources: list[BuildSource] = []
    problems: list[str] = []
    for package, folder in sorted(folders.items()):
        nested = [str(root / f) for p, f in folders.items() if p.startswith(package + ".")]
        for file in sorted((root / folder).rglob("*.py")):
            if any(str(file).startswith(n + "/") for n in nested):
                continue  # mapped to a package of its own
            parts = list(file.relative_to(root / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            module = ".".join([package, *parts])
            owner = module if file.name == "__init__.py" else module.rpartition(".")[0]
            if owner not in listed:
                problems.append(
                    f"{file.relative_to(root)}: package {owner!r} is missing from "
                    "[tool.setuptools] packages in pyproject.toml"
                )
            sources.append(BuildSource(str(file.relative_to(root)), module, None, str(root)))
    return sources, sorted(set(problems))


def main(argv: list[str]) -> int:
    """Runs the check; returns mypy's exit status (0 clean, 1 errors, 2 crash)."""
    files = argv[: argv.index("--")] if "--" in argv else argv
    flags = argv[argv.index("--") + 1 :] if "--" in argv else []
    sources, problems = package_sources()
    for name in files:
        path = pathlib.Path(name).resolve()
        sources.append(BuildSource(str(path), path.stem, None, str(path.parent)))
    os.chdir(ROOT)
    for problem in problems:
        print(f"error: {problem}")
    _, options = process_options(
        ["--config-file", str(ROOT / "pyproject.toml"), *flags], require_targets=False
    )
    options.cache_dir = str(ROOT / ".mypy_cache")
    messages: list[str] = []
    try:
        build.build(sources, options, flush_errors=lambda _f, new, _s: messages.extend(new))
    except CompileError as error:  # a blocking error (a syntax error, say)
        print("\n".join(messages or error.messages))
        return 2
    for message in messages:
        print(message)
    errors = sum(": error:" in m for m in messages) + len(problems)
    if errors:
        print(f"Found {errors} errors (checked {len(sources)} source files)")
        return 1
    print(f"Success: no issues found in {len(sources)} source files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
