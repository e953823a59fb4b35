"""The CPU benchmark scripts run end to end with tiny settings and print their figures.

They are measured by hand (their figures are in the README and benchmarks/RESULTS*.md);
these runs only keep them working as the library changes.
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run_script(name: str, *args: str, timeout: float = 240) -> str:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / name), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_encoder_benchmark_prints_every_operation_and_its_goal() -> None:
    out = run_script("encoder.py", "--repeats", "20", "--pg-repeats", "2")
    assert re.search(r"space: 30 decisions, [\d.]+ active on average", out)
    for name in ("random_tokens", "validate tokens", "tokens -> decision values"):
        assert re.search(rf"^{re.escape(name)}\s+[\d,.]+\s+\d+x\s+[\d.]+x\s+<= 50 µs", out, re.M)
    for name in ("to_tokens(dna)", "from_tokens(tokens)", "materialize(tokens)"):
        assert re.search(rf"^{re.escape(name)}\s+[\d,.]+\s+\d+x", out, re.M)


def test_overhead_benchmark_times_every_algorithm_on_three_spaces() -> None:
    out = run_script("overhead.py", "--trials", "16", "--pg-trials", "2", "--repeats", "1")
    from symbolic_nas import algorithms

    for size in (6, 30, 100):
        assert re.search(
            rf"^{size} decisions: pg.sample \+ pg.geno.Random\s+[\d.]+ ms/trial", out, re.M
        )
    for name in [*algorithms.available(), "reinforce m=64", "reinforce no memory"]:
        rows = re.findall(rf"^  {re.escape(name)}\s+[\d.]+ ms/trial\s+[\d.]+x faster", out, re.M)
        assert len(rows) == 3, (name, out)
    assert re.search(
        r"^goal reinforce <= 1 ms/trial on 30 decisions: [\d.]+ ms \((met|missed)\)", out, re.M
    )


@pytest.mark.timeout(300)
def test_tuner_overhead_benchmark_runs_the_four_configurations() -> None:
    out = run_script("tuner_overhead.py", "--trials", "30", "--algorithms", "random")
    assert "random, 30 trials:" in out
    for label in ("bare algorithm loop", "tuner, in memory", "tuner, journal + checkpoints"):
        assert re.search(rf"^  {re.escape(label)}\s+[\d.]+ s", out, re.M), out
    assert re.search(r"tuner, journal \+ TensorBoard\s+[\d.]+ s .*goal <= 20 s", out)


@pytest.mark.slow  # 67 s at load 2 on the 2-core box, 147 s at load 6
@pytest.mark.timeout(900)
def test_fault_campaign_runs_every_case_in_its_quick_mode() -> None:
    out = run_script("fault_campaign.py", "--quick", timeout=840)
    for case in (
        "SIGKILL driver, inline",
        "SIGKILL driver, 2 process workers",
        "two drivers on one run directory",
        "evaluator errors escaping, inline",
        "user's Ctrl-C (SIGINT) during an inline trial",
        "resume: payload module in the run directory",
        "workers SIGKILLed while starting, always (CLI)",
        "CLI: report on a corrupt journal",
        "wrong-shape journal record, bad checkpoint",
    ):
        assert re.search(rf"^{re.escape(case)}\s+(ok|not yet)\s", out, re.M), out
    assert re.search(r"^SIGKILL driver, inline\s+ok\s+1 x SIGKILL: 0 lost, 0 duplicated", out, re.M)
    assert re.search(r"^\d+ cases: \d+ ok, 0 failed, [01] not yet; \d+ s$", out, re.M), out


@pytest.mark.slow
def test_learned_search_throughput_prints_rates_and_ratios_per_learner() -> None:
    out = run_script(
        "learned_search.py", "throughput", "--transitions", "200", "--repeats", "1",
        "--updates-per-transition", "0",
    )  # fmt: skip
    rows = re.findall(
        r"^\| (asynchronous|ordered rounds) \| 256 \| ([\d.]+) \| [\d.]+ \| (\d+) \(\d+–\d+\) \| "
        r"(\d+) \(\d+–\d+\)"
        r" \| ([\d.]+) \(",
        out,
        re.M,
    )
    assert [(r[0], r[1]) for r in rows] == [("asynchronous", "0"), ("ordered rounds", "0.003")]
    assert re.search(r"^box: two identical torch processes do [\d.]+x the work of one", out, re.M)
    for _, _, one, two, ratio in rows:
        assert float(ratio) == pytest.approx(int(two) / int(one), abs=0.02)
