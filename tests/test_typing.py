"""The package's types as a user meets them: a space written with placeholders
type-checks, and mistakes in one are reported.

Both files in tests/typing/ go through scripts/typecheck.py, so mypy sees the
package with its own settings; ``user_space.py`` is also run, so it is a real space.
"""

from __future__ import annotations

import pathlib
import re
import runpy
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
CLEAN = ROOT / "tests" / "typing" / "user_space.py"
ERRORS = ROOT / "tests" / "typing" / "user_space_errors.py"
_MESSAGE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): error: .*\[(?P<code>[a-z-]+)\]$")


def _mypy_errors() -> dict[str, set[tuple[int, str]]]:
    """(line, error code) of each mypy error, by file name, for the two files."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "typecheck.py"), str(CLEAN), str(ERRORS)],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr
    found: dict[str, set[tuple[int, str]]] = {CLEAN.name: set(), ERRORS.name: set()}
    for text in done.stdout.splitlines():
        match = _MESSAGE.match(text)
        if match and pathlib.Path(match["file"]).name in found:
            found[pathlib.Path(match["file"]).name].add((int(match["line"]), match["code"]))
    return found


def _marked(file: pathlib.Path) -> set[tuple[int, str]]:
    lines = file.read_text().splitlines()
    return {
        (number, code)
        for number, text in enumerate(lines, start=1)
        for code in re.findall(r"# E: ([a-z-]+)", text)
    }


def test_a_typed_space_checks_clean_and_its_mistakes_are_each_reported():
    found = _mypy_errors()
    assert found[CLEAN.name] == set()
    expected = _marked(ERRORS)
    assert len(expected) >= 9
    assert found[ERRORS.name] == expected


def test_the_typed_space_is_a_real_one():
    namespace = runpy.run_path(str(CLEAN))
    assert type(namespace["model"]).__name__ == "Net"
    assert tuple(namespace["logits"].shape) == (2, 10)
