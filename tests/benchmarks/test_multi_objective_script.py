"""benchmarks/multi_objective.py: the tabular run end to end, and its section of the results."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import multi_objective  # noqa: E402


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_quick_tabular_run_prints_every_row_and_the_goal(tmp_path) -> None:
    out_file = tmp_path / "RESULTS-cost.md"
    out_file.write_text("# Cost\n\n## Early stopping\n\nkept as it is\n")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "multi_objective.py"), "--quick",
         "--real-trials", "0", "--out", str(out_file)],
        cwd=ROOT, capture_output=True, text=True, timeout=580,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in [*multi_objective.OURS, multi_objective.OPTUNA]:
        row = re.search(
            rf"^\| {re.escape(name)} \| ([\d.]+) ± [\d.]+ \| ([\d.]+) ±", proc.stdout, re.M
        )
        assert row, name
        assert 0 < float(row.group(1)) <= float(row.group(2)) <= 100  # more queries, more HV
    assert re.search(r"after 40 queries: \S+ [\d.]+ vs optuna_mo_tpe [\d.]+: \*\*(met|missed)\*\*",
                     proc.stdout)  # fmt: skip
    text = out_file.read_text()
    assert (
        "## Early stopping\n\nkept as it is\n" in text and text.count("## Several objectives") == 1
    )


def test_write_section_replaces_only_its_own_section(tmp_path) -> None:
    path = tmp_path / "r.md"
    multi_objective.write_section(str(path), "## Several objectives\n\nfirst\n")
    path.write_text(path.read_text() + "\n## Early stopping\n\nother\n")
    multi_objective.write_section(str(path), "## Several objectives\n\nsecond\n")
    text = path.read_text()
    assert "second" in text and "first" not in text and "## Early stopping\n\nother\n" in text


def test_the_reference_point_is_the_worst_of_the_table() -> None:
    from symbolic_nas.nasbench import NasBench201

    reference, optimum = multi_objective.reference_and_optimum(NasBench201())
    assert reference == [pytest.approx(9.712), pytest.approx(-1.53155)]
    assert 0 < optimum < (84.892 - 9.712) * (1.53155 - 0.073306)
