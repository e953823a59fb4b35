"""The examples run as a newcomer runs them (``python examples/NAME.py``), on small settings."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_example(name: str, *args: str, cwd: pathlib.Path = ROOT) -> str:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.timeout(300)
def test_the_main_job_searches_resumes_and_leaves_tensorboard_logs(tmp_path):
    run_dir = tmp_path / "mnist"
    out = run_example("mnist_search.py", "--trials", "4", "--run-dir", str(run_dir))
    assert f"4 trials (0 failed) in {run_dir}" in out
    assert re.search(r"^best: trial \d, tokens \[[\d, ]+\]$", out, re.M)
    accuracy = float(re.search(r"^held-out test accuracy ([\d.]+)$", out, re.M).group(1))
    assert 0.3 < accuracy <= 1.0  # two epochs on 4,000 digits: far above chance (0.1)
    assert "DigitNet(" in out
    assert any((run_dir / "tensorboard").iterdir())
    again = run_example("mnist_search.py", "--trials", "6", "--run-dir", str(run_dir))
    assert f"6 trials (0 failed) in {run_dir}" in again  # continued, not restarted


def test_quickstart_and_annotation_examples_run():
    assert run_example("quickstart.py").strip()
    assert run_example("annotate_existing_model.py").strip()


def test_nasbench201_example_reports_test_accuracy_of_its_picks():
    out = run_example("nasbench201_search.py", "--trials", "20", "--seeds", "2")
    figures = [float(x) for x in re.findall(r"\b(9\d\.\d+)\b", out)]
    assert figures and all(85 < f < 94.4 for f in figures), out
