"""benchmarks/early_stopping.py runs end to end in its quick mode and prints its figures."""

from __future__ import annotations

import json
import re

import pytest

from tests.benchmarks.test_benchmark_scripts import run_script


@pytest.mark.slow  # five tiny searches with real training: about 30 s on a busy CPU
def test_early_stopping_benchmark_runs_every_pruner_in_its_quick_mode(tmp_path) -> None:
    out_file = tmp_path / "rows.json"
    out = run_script("early_stopping.py", "--quick", "--out", str(out_file), timeout=600)
    rows = json.loads(out_file.read_text())
    assert [r["config"] for r in rows] == [
        "none", "median", "asha", "hyperband", "asha-no-signal", "successive-halving",
    ]  # fmt: skip
    none = rows[0]
    assert none["pruned"] == 0 and none["epochs_trained"] == 4 * 2
    for row in rows:
        assert row["pruned"] + row["completed"] == 4
        assert 0.0 <= row["best_test_accuracy"] <= 1.0
        assert row["epochs_trained"] <= none["epochs_trained"]
    assert any(r["pruned"] for r in rows)
    for config in ("none", "median", "asha", "hyperband", "asha-no-signal", "successive-halving"):
        assert re.search(rf"^\| {config} \| 1 \| \d+ \| \d+% \| \d+% \|", out, re.M), out
    assert re.search(r"^ASHA: 0\.\d{3} vs 0\.\d{3} ± 0\.000 .* of the wall time", out, re.M)
