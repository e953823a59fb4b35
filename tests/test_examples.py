"""The examples run as a newcomer runs them (``python examples/NAME.py``), on small settings."""

from __future__ import annotations

import ast
import json
import pathlib
import re
import statistics
import subprocess
import sys

import pytest

from symbolic_nas.nasbench import NasBench201

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


@pytest.mark.slow  # two searches with training: ~35 s
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


QUICKSTART_LINE = re.compile(
    r"^tokens (\[[\d, ]+\]) -> DNA\(.*\) -> Net with ([\d,]+) parameters, output \(2, 10\): (.*)$",
    re.M,
)


def _quickstart_parameters(tokens: list[int]) -> tuple[int, dict[str, object]]:
    """Parameters and decoded choices of the quickstart's space, worked out by hand."""
    if tokens[0] == 0:  # Net([Block(1, 16, k, act)], 16)
        kernel, act = (3, 5)[tokens[1]], ("relu", "gelu")[tokens[2]]
        conv = 16 * kernel * kernel + 16
        choices = {"<root>": "Net(width=16)", "blocks[0].kernel": kernel}
        return conv + 16 * 10 + 10, {**choices, "blocks[0].act": act}
    kernel = (3, 5, 7)[tokens[1]]  # Net([Block(1, 16, 3), Block(16, 32, k)], 32)
    convs = (16 * 9 + 16) + (32 * 16 * kernel * kernel + 32)
    return convs + 32 * 10 + 10, {"<root>": "Net(width=32)", "blocks[1].kernel": kernel}


def test_quickstart_example_prints_its_space_and_correct_models():
    out = run_example("quickstart.py")
    assert "space: 4 decisions, 7 architectures\n" in out
    assert "  [3] blocks[1].kernel: ['3', '5', '7']  (active when decision 0 = 1)" in out
    models = QUICKSTART_LINE.findall(out)
    assert len(models) == 3, out
    for tokens, params, decoded in models:
        expected_params, expected_choices = _quickstart_parameters(json.loads(tokens))
        assert int(params.replace(",", "")) == expected_params, tokens
        assert ast.literal_eval(decoded) == expected_choices


def test_annotation_example_swaps_submodules_and_keeps_weights():
    out = run_example("annotate_existing_model.py")
    assert out.startswith(
        "decision 'layer1.0': ['keep', 'wider_kernel', 'depthwise_separable']\n"
        "decision 'layer2.0': ['keep', 'wider_kernel', 'depthwise_separable']\n"
        "decision 'head': ['plain', 'dropout']\n"
    ), out
    models = re.findall(r"^(\{.*\}) -> output (\(.*\)), stem weights kept: (\w+)$", out, re.M)
    assert len(models) == 3, out
    for labels, shape, kept in models:
        assert set(ast.literal_eval(labels)) == {"layer1.0", "layer2.0", "head"}
        assert (shape, kept) == ("(2, 10)", "True")


SEED_LINE = re.compile(
    r"^seed (\d+): best fitness (\S+) -> test accuracy (\S+) \(index (\d+)\) (\S+)$", re.M
)


def test_nasbench201_example_reports_the_table_figures_of_good_picks():
    out = run_example("nasbench201_search.py", "--trials", "20", "--seeds", "2")
    table = NasBench201().table
    fitness_column, test_column = table.column("c10valid_val_12"), table.column("c10_test_200")
    picks = SEED_LINE.findall(out)
    assert [int(seed) for seed, *_ in picks] == [0, 1], out
    for _, fitness, test, index, arch in picks:
        row = table.row_of_index(int(index))
        assert arch == table.arch_str(int(index))
        assert float(fitness) == pytest.approx(fitness_column[row], abs=0.005)
        assert float(test) == pytest.approx(test_column[row], abs=0.005)
        # The best of 20 draws beats 80 % of all cells with probability 0.99 even when the
        # draws are random; the table's best test accuracy is 94.37.
        assert (fitness_column < float(fitness)).mean() > 0.8, (fitness, out)
        assert 85 < float(test) < 94.4, out
    summary = re.search(
        r"^reinforce, 20 trials, 2 seeds: test accuracy (\S+) \+- (\S+) \(best cell: (\S+)\)$",
        out,
        re.M,
    )
    assert summary is not None, out
    tests = [float(test) for _, _, test, _, _ in picks]
    assert float(summary[1]) == pytest.approx(statistics.mean(tests), abs=0.01)
    assert float(summary[2]) == pytest.approx(statistics.stdev(tests), abs=0.01)
    assert float(summary[3]) == pytest.approx(94.37)


def _readme_python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"^```python\n(.*?)^```$", text, re.M | re.S)


def test_every_readme_example_with_workers_is_guarded():
    blocks = [b for b in _readme_python_blocks() if re.search(r"\bworkers=", b)]
    assert len(blocks) >= 2
    for block in blocks:
        assert 'if __name__ == "__main__":' in block, block


@pytest.mark.timeout(300)
def test_the_readme_search_example_runs_as_a_script(tmp_path):
    (block,) = [b for b in _readme_python_blocks() if 'run_dir="runs/readme"' in b]
    script = tmp_path / "search.py"
    script.write_text(block.replace("num_trials=20", "num_trials=2"))
    for _ in range(2):  # the second run continues the first (resume=True)
        proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                              text=True, timeout=240)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert re.search(r"^trial \d: accuracy 0\.\d{3}$", proc.stdout, re.M), proc.stdout
        assert "Net(" in proc.stdout
    lines = (tmp_path / "runs" / "readme" / "journal.jsonl").read_text().splitlines()
    events = [json.loads(line)["event"] for line in lines]
    assert events.count("run") == 2 and events.count("end") == 2  # continued, not re-run


@pytest.mark.slow  # a shared-weight search and two retrainings: ~30 s
@pytest.mark.timeout(300)
def test_the_weight_sharing_flow_runs_both_stages_and_resumes(tmp_path):
    run_dir = tmp_path / "flow"
    args = ("--trials", "12", "--finalists", "2", "--epochs", "1", "--run-dir", str(run_dir))
    out = run_example("weight_sharing_flow.py", *args)
    assert "stage 1: 12 shared-weight trials, pool ParameterPool(" in out
    assert len(re.findall(r"^  finalist trial \d+: shared-weight accuracy", out, re.M)) == 2
    assert "stage 2: 2 finalists retrained from scratch" in out
    accuracy = float(re.search(r"^held-out test accuracy ([\d.]+)$", out, re.M).group(1))
    assert 0.3 < accuracy <= 1.0
    assert (run_dir / "shared" / "evaluator.pt").exists()
    again = run_example("weight_sharing_flow.py", *args)  # both runs are finished: resumed
    assert "stage 1: 12 shared-weight trials" in again
