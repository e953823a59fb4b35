"""The command line shows what happened: failures, a readable best trial, clean stops."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from symbolic_nas import cli

TESTS = pathlib.Path(__file__).resolve().parent
ROOT = TESTS.parent
SPACE = "tests.helpers.cli:choice_space"
FAILS = ["--evaluator", "tests.helpers.cli:always_fails"]
KERNEL = ["--evaluator", "tests.helpers.cli:kernel_reward"]
QUIET = ["--algorithm", "random", "--no-tensorboard", "--no-progress"]


def invoke(*args: str):
    return CliRunner().invoke(cli.cli, list(args))


def test_a_search_where_every_trial_fails_shows_the_errors_and_exits_non_zero():
    result = invoke("search", SPACE, *FAILS, "--num-trials", "3", *QUIET)
    assert result.exit_code == 1, result.output
    assert "3 trials: 0 completed, 3 failed" in result.output
    assert "failures (3):" in result.output
    assert "ValueError: no reward for [" in result.output
    assert "Error: no trial completed (3 failed" in result.output
    assert "Traceback" not in result.output


def test_a_run_dir_where_every_trial_fails_exits_non_zero(tmp_path):
    result = invoke("search", SPACE, *FAILS,
                    "--num-trials", "2", "--run-dir", str(tmp_path / "run"), *QUIET)  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "failures (2):" in result.output and "no trial completed" in result.output


def test_a_successful_search_prints_the_best_trial_readably():
    result = invoke("search", SPACE, *KERNEL, "--num-trials", "12", *QUIET)
    assert result.exit_code == 0, result.output
    assert "Trial(" not in result.output
    assert "12 trials: 12 completed, 0 failed" in result.output
    lines = result.output.splitlines()
    best = next(line for line in lines if line.startswith("best: trial "))
    assert best.endswith("reward 7")
    assert "  kernel = 7" in lines
    assert any(line.startswith("  act = ") for line in lines)
    assert "  metrics: width=16" in lines


def test_a_search_with_a_run_dir_also_prints_the_best_trial(tmp_path):
    result = invoke("search", SPACE, *KERNEL, "--num-trials", "12",
                    "--run-dir", str(tmp_path / "run"), *QUIET)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "top 5:" in result.output and "  kernel = 7" in result.output.splitlines()


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--workers", "abc"], "--workers"),
        (["--evaluator", "symbolic_nas.training:Trainer", "--evaluator-arg", "epochs=two"],
         "--evaluator-arg"),
        (["--num-trials", "x"], "--num-trials"),
        (["--num-trials", "0"], "--num-trials"),
    ],
)  # fmt: skip
def test_bad_values_get_one_line_naming_the_option(args, option):
    result = invoke("search", SPACE, *QUIET, *args)
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    (error,) = [line for line in result.output.splitlines() if "Error" in line]
    assert option in error, result.output


def test_messages_name_command_line_options(tmp_path):
    run_dir = str(tmp_path / "run")
    search = ["search", SPACE, *KERNEL,
              "--num-trials", "2", "--run-dir", run_dir, *QUIET]  # fmt: skip
    assert invoke(*search).exit_code == 0
    again = invoke(*search)
    assert again.exit_code == 1
    assert "pass --resume to continue it" in again.output
    assert "resume=True" not in again.output and "`run_dir`" not in again.output


@pytest.mark.timeout(60)
def test_tensorboard_stops_its_child_on_sigterm(tmp_path):
    (tmp_path / "run" / "tensorboard").mkdir(parents=True)
    pid_file = tmp_path / "child.pid"
    (tmp_path / "fake_tensorboard.py").write_text(
        "import os, pathlib, time\n"
        f"pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid()))\n"
        "time.sleep(120)\n"
    )
    driver = (
        "import sys\nfrom symbolic_nas import cli\n"
        "cli._TENSORBOARD_MODULE = 'fake_tensorboard'\ncli.main(sys.argv[1:])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-c", driver, "tensorboard", "run"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not pid_file.exists() or not pid_file.read_text():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the child never started"
            time.sleep(0.05)
        child = int(pid_file.read_text())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 10
        while _alive(child):
            assert time.monotonic() < deadline, "TensorBoard's process outlived the command"
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.communicate()
        if pid_file.exists() and _alive(int(pid_file.read_text())):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][0] != "Z"  # A zombie has stopped.
    except FileNotFoundError:
        return False
