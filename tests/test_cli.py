"""Tests for the symbolic-nas command line."""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from symbolic_nas import cli

SEARCH = [
    "search",
    "tests.helpers.tuner:wide_space",
    "--evaluator",
    "tests.helpers.tuner:token_reward",
    "--algorithm",
    "random",
    "--no-tensorboard",
    "--no-progress",
]


def _invoke(*args: str):
    return CliRunner().invoke(cli.cli, list(args), catch_exceptions=False)


def test_search_then_resume_then_report(tmp_path):
    run_dir = str(tmp_path / "run")
    first = _invoke(*SEARCH, "--num-trials", "4", "--run-dir", run_dir, "--seed", "3", "--top", "2")
    assert first.exit_code == 0, first.output
    assert "trials: 4 of 4 finished, 4 completed, 0 failed" in first.output
    assert "top 2:" in first.output and "length" in first.output  # A metric column.
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["metadata"]["cli"]["space"] == "tests.helpers.tuner:wide_space"

    resumed = _invoke("resume", run_dir, "--num-trials", "6", "--no-progress")
    assert resumed.exit_code == 0, resumed.output
    assert "trials: 6 of 6 finished" in resumed.output and "2 session(s)" in resumed.output

    report = _invoke("report", run_dir, "--top", "3")
    assert report.exit_code == 0 and "top 3:" in report.output
    rows = [
        line for line in report.output.splitlines() if line.strip().startswith(("1 ", "2 ", "3 "))
    ]
    rewards = [float(row.split()[2]) for row in rows]
    assert len(rewards) == 3 and rewards == sorted(rewards, reverse=True)


def test_resume_keeps_the_searchs_execution_options_unless_given(tmp_path, monkeypatch):
    run_dir = str(tmp_path / "run")
    options = ["--workers", "1", "--executor", "inline", "--trial-timeout", "30"]
    first = _invoke(*SEARCH, "--num-trials", "2", "--run-dir", run_dir, *options,
                    "--max-consecutive-failures", "3")  # fmt: skip
    assert first.exit_code == 0, first.output
    seen = []
    monkeypatch.setattr(cli, "_run", lambda kwargs, config, top: seen.append(kwargs))
    assert _invoke("resume", run_dir, "--num-trials", "3").exit_code == 0
    kept = seen.pop()
    assert (kept["workers"], kept["executor"], kept["trial_timeout"]) == (1, "inline", 30.0)
    assert kept["max_consecutive_failures"] == 3 and kept["num_trials"] == 3
    changed = ["--workers", "2", "--executor", "process", "--trial-timeout", "5"]
    assert _invoke("resume", run_dir, *changed, "--max-consecutive-failures", "7").exit_code == 0
    given = seen.pop()
    assert (given["workers"], given["executor"], given["trial_timeout"]) == (2, "process", 5.0)
    assert given["max_consecutive_failures"] == 7 and given["num_trials"] == 2


def test_a_registered_space_fits_the_default_trainers_data(tmp_path):
    from symbolic_nas import Trainer

    trainer = Trainer()
    assert cli.data_space_args("zoph_le_cnn", trainer, {}) == {"in_channels": 1, "num_classes": 10}
    assert cli.data_space_args("metaqnn", trainer, {"num_classes": 3}) == {
        "in_channels": 1,
        "image_size": 28,
    }
    assert cli.data_space_args("nas_rnn_cell", trainer, {}) == {}  # takes none of them
    assert cli.data_space_args("tests.helpers.tuner:wide_space", trainer, {}) == {}
    assert cli.data_space_args("zoph_le_cnn", lambda model: 1.0, {}) == {}
    # End to end: the NAS-Bench-201 network (3 input channels by default) trains on the
    # 1-channel digits without any --space-arg for them.
    result = CliRunner().invoke(
        cli.cli,
        ["search", "nasbench201", "--space-arg", "C=4", "--space-arg", "N=1",
         "--evaluator-arg", "epochs=1", "--evaluator-arg", "max_batches_per_epoch=2",
         "--num-trials", "2", "--algorithm", "random", "--run-dir", str(tmp_path / "run"),
         "--no-tensorboard", "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "space arguments from the trainer's data: in_channels=1, num_classes=10" in (
        result.output
    )
    assert "2 completed, 0 failed" in result.output
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["metadata"]["cli"]["space_args"] == {"C": 4, "N": 1, "in_channels": 1,
                                                      "num_classes": 10}  # fmt: skip


def test_search_arguments_reach_the_space_evaluator_and_algorithm(tmp_path):
    run_dir = str(tmp_path / "run")
    result = _invoke(
        "search",
        "tests.helpers.tuner:behaviour_space",
        "--evaluator",
        "tests.helpers.tuner:FaultyEvaluator",
        "--evaluator-arg",
        "sleep=0.0",
        "--algorithm",
        "evolution",
        "--algorithm-arg",
        "population_size=4",
        "--algorithm-arg",
        "tournament_size=2",
        "--num-trials",
        "12",
        "--max-consecutive-failures",
        "20",
        "--run-dir",
        run_dir,
        "--no-tensorboard",
    )
    assert result.exit_code == 0, result.output
    assert "algorithm evolution" in result.output  # sleep=60 s would have hung the test.
    assert re.search(
        r"failures \(\d+\):\n  \d+ x (ValueError|NonFiniteLossError|OutOfMemoryError)",
        result.output,
    )
    config = json.loads((tmp_path / "run" / "config.json").read_text())["metadata"]["cli"]
    assert config["evaluator_args"] == {"sleep": 0.0}
    assert config["algorithm_args"] == {"population_size": 4, "tournament_size": 2}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "no_such_module:space"], "cannot import 'no_such_module'"),
        (["search", "tests.helpers.tuner:nothing"], "has no attribute 'nothing'"),
        (["search", "not-a-space"], "must be MODULE:ATTRIBUTE or one of the registered spaces"),
        ([*SEARCH, "--space-arg", "novalue"], "must be KEY=VALUE, but got 'novalue'"),
        ([*SEARCH, "--algorithm", "nope"], "`algorithm` must be one of"),
        ([*SEARCH, "--algorithm-arg", "seed=1"], "give the seed with --seed"),
        (
            [*SEARCH, "--algorithm", "evolution", "--algorithm-arg", "population_size=1"],
            "`population_size` must be an int >= 2, but got 1",
        ),
        ([*SEARCH, "--workers", "many"], "must be an int or 'auto', but got 'many'"),
    ],
)
def test_bad_arguments_give_clear_errors(args, message):
    result = CliRunner().invoke(cli.cli, args)
    assert result.exit_code != 0
    assert message in result.output


def test_resume_and_report_refuse_what_is_not_a_cli_run(tmp_path):
    import symbolic_nas as sn
    from tests.helpers import tuner as h

    run_dir = tmp_path / "api"
    sn.search(h.small_space(), h.small_reward, algorithm="random", num_trials=2, run_dir=run_dir,
              tensorboard=False, progress=False)  # fmt: skip
    result = CliRunner().invoke(cli.cli, ["resume", str(run_dir)])
    assert result.exit_code == 1 and "was not started by `symbolic-nas search`" in result.output
    assert "trials: 2 of 2 finished" in _invoke("report", str(run_dir)).output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(cli.cli, ["report", str(empty)])
    assert result.exit_code == 1 and "must hold a run" in result.output


def test_a_failing_search_exits_with_its_message(tmp_path):
    result = CliRunner().invoke(
        cli.cli,
        [
            "search",
            "tests.helpers.tuner:behaviour_space",
            "--evaluator",
            "tests.helpers.tuner:FaultyEvaluator",
            "--algorithm",
            "random",
            "--max-consecutive-failures",
            "1",
            "--num-trials",
            "30",
            "--no-tensorboard",
        ],
    )
    assert result.exit_code == 1
    assert "(--max-consecutive-failures=1); the run stopped" in result.output
    assert "give --run-dir to be able to resume" in result.output


def test_tensorboard_serves_the_run_on_localhost(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(cli, "serve", lambda command: calls.append(command) or 0)
    (tmp_path / "tensorboard").mkdir()
    result = CliRunner().invoke(cli.cli, ["tensorboard", str(tmp_path), "--port", "6123"])
    assert result.exit_code == 0, result.output
    (command,) = calls
    assert command[1:3] == ["-m", "tensorboard.main"]
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--port") + 1] == "6123"
    assert command[command.index("--logdir") + 1] == str(tmp_path / "tensorboard")
    missing = CliRunner().invoke(cli.cli, ["tensorboard", str(tmp_path / "tensorboard")])
    assert missing.exit_code == 1 and "does not exist" in missing.output


def test_the_console_script_is_installed():
    script = pathlib.Path(sys.executable).parent / "symbolic-nas"
    completed = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    for command in ("search", "resume", "report", "tensorboard"):
        assert command in completed.stdout


# ------------------------------------------------------------- resume and the run's code

PAYLOAD = """
import pathlib
pathlib.Path({marker!r}).write_text("the payload ran")
from tests.helpers.tuner import token_reward, wide_space
"""


def _plant_payload(run_dir: pathlib.Path, name: str, marker: pathlib.Path, **cli_config) -> None:
    """A module inside the run directory that leaves ``marker`` when imported, and a config
    whose `cli` metadata points at it."""
    (run_dir / f"{name}.py").write_text(PAYLOAD.format(marker=str(marker)))
    config_file = run_dir / "config.json"
    config = json.loads(config_file.read_text())
    config["metadata"]["cli"].update(cli_config)
    config_file.write_text(json.dumps(config))


def test_resume_never_imports_code_from_the_run_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    run_dir = tmp_path / "run"
    assert _invoke(*SEARCH, "--num-trials", "2", "--run-dir", str(run_dir)).exit_code == 0
    marker, original = tmp_path / "pwned", (run_dir / "config.json").read_text()
    cases = [
        # The config names the run directory as the search's directory (it used to go
        # first on sys.path).
        (tmp_path, {"cwd": str(run_dir), "space": "snpayload1:wide_space"}, "snpayload1",
         "cannot find module 'snpayload1'"),
        # A module reached from the current directory through the run directory.
        (tmp_path, {"evaluator": "run.snpayload2:token_reward"}, "snpayload2",
         "refusing to import 'run.snpayload2'"),
        # Resuming from inside the run directory.
        (run_dir, {"space": "snpayload3:wide_space"}, "snpayload3",
         "refusing to import 'snpayload3'"),
    ]  # fmt: skip
    for cwd, cli_config, name, message in cases:
        (run_dir / "config.json").write_text(original)
        _plant_payload(run_dir, name, marker, **cli_config)
        monkeypatch.chdir(cwd)
        result = CliRunner().invoke(cli.cli, ["resume", str(run_dir), "--num-trials", "3"])
        assert result.exit_code == 1, result.output
        assert message in result.output and "Traceback" not in result.output
        assert not marker.exists(), f"resume ran code from the run directory: {cli_config}"
        assert name not in sys.modules
        report = _invoke("report", str(run_dir))
        assert report.exit_code == 0 and not marker.exists()  # `report` imports no user code.
    assert "inside the run directory" in result.output


def test_resume_prints_the_modules_it_imports(tmp_path):
    run_dir = str(tmp_path / "run")
    assert _invoke(*SEARCH, "--num-trials", "2", "--run-dir", run_dir).exit_code == 0
    resumed = _invoke("resume", run_dir, "--num-trials", "3", "--no-progress")
    assert resumed.exit_code == 0, resumed.output
    helpers = pathlib.Path(__file__).parent / "helpers" / "tuner.py"
    lines = resumed.stderr.splitlines()
    assert (
        f"resume imports tests.helpers.tuner from {helpers} for the space "
        "tests.helpers.tuner:wide_space" in lines
    )
    assert any(
        line.endswith("for the evaluator tests.helpers.tuner:token_reward") for line in lines
    )


def test_resume_refuses_fewer_trials_than_the_run_finished(tmp_path):
    run_dir = tmp_path / "run"
    assert _invoke(*SEARCH, "--num-trials", "6", "--run-dir", str(run_dir)).exit_code == 0
    config, journal = (run_dir / "config.json").read_text(), (run_dir / "journal.jsonl").read_text()
    result = CliRunner().invoke(cli.cli, ["resume", str(run_dir), "--num-trials", "2"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "must be at least the 6 trials the run already finished, but got 2" in result.output
    assert (run_dir / "config.json").read_text() == config  # never rewritten to 2
    assert (run_dir / "journal.jsonl").read_text() == journal


# ------------------------------------------------------------- user errors: one line each


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "zoph_le_cnn", "--space-arg", "bogus=1"],
         "space zoph_le_cnn takes no argument bogus; its arguments are: "),
        ([*SEARCH[:1], "tests.helpers.tuner:ranged_space", *SEARCH[2:], "--space-arg", "bogus=1"],
         "space ranged_space takes no argument bogus; its arguments are: high"),
        ([*SEARCH[:1], "tests.helpers.tuner:ranged_space", *SEARCH[2:], "--space-arg", "high=0"],
         "space ranged_space failed with high=0: ValueError: `low` of intv must be <= `high` (0)"),
        (["search", "tests.helpers.tuner:wide_space", "--evaluator-arg", "bogus=1"],
         "evaluator Trainer takes no argument bogus; its arguments are: data, epochs,"),
        (["search", "tests.helpers.tuner:wide_space", "--evaluator-arg", "epochs=0"],
         "`epochs` must be an int >= 1, but got 0"),
    ],
)  # fmt: skip
def test_bad_factory_arguments_are_usage_errors(args, message):
    result = CliRunner().invoke(cli.cli, args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def test_a_worker_error_ends_the_command_with_one_line(monkeypatch):
    from symbolic_nas import api
    from symbolic_nas.tuner.executors.local import WorkerError

    def search(*args, **kwargs):
        raise WorkerError("worker process 0 died 4 times in a row while starting; giving up")

    monkeypatch.setattr(api, "search", search)
    result = CliRunner().invoke(cli.cli, SEARCH)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.output == (
        "Error: worker process 0 died 4 times in a row while starting; giving up\n"
    )


def test_report_reads_a_damaged_journal_without_changing_it(tmp_path):
    import symbolic_nas as sn
    from tests.helpers import tuner as h

    run_dir = tmp_path / "run"
    sn.search(h.small_space(), h.small_reward, algorithm="random", num_trials=3, run_dir=run_dir,
              tensorboard=False, progress=False)  # fmt: skip
    journal = run_dir / "journal.jsonl"
    good = journal.read_bytes()
    assert CliRunner().invoke(cli.cli, ["report", str(run_dir), "--top", "-1"]).exit_code == 2

    journal.write_bytes(good + b'{"event": "propose", "tri')  # a write cut short by a crash
    torn = CliRunner().invoke(cli.cli, ["report", str(run_dir)])
    assert torn.exit_code == 0 and "trials: 3 of 3 finished" in torn.output
    assert "the journal's last line is torn" in torn.output
    assert "`symbolic-nas resume` repairs it" in torn.output
    assert journal.read_bytes() == good + b'{"event": "propose", "tri'  # report never writes

    lines = good.split(b"\n")
    damaged = [(b"garbage", "is corrupt at line 3"),
               (b'{"event": "end", "trial": 5}', "has a record of the wrong shape at line 3: "
                "`trial` must be a trial record (a dict), but got 5")]  # fmt: skip
    for line, message in damaged:
        journal.write_bytes(b"\n".join([*lines[:2], line, *lines[3:]]))
        result = CliRunner().invoke(cli.cli, ["report", str(run_dir)])
        assert result.exit_code == 1 and "Traceback" not in result.output
        output = " ".join(result.output.split())
        assert f"Error: journal {str(journal)!r} {message}" in output
        assert "`symbolic-nas resume` repairs only a torn last line" in output
