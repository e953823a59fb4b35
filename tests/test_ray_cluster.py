"""A real two-node Ray cluster (two `ray start --block` process groups on loopback, token
authentication on): trials land on both nodes, a node is lost mid-search, the driver is
SIGKILLed and resumed against the same cluster."""

from __future__ import annotations

import collections
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from symbolic_nas.storage.journal import JournalStorage
from symbolic_nas.storage.records import EventKind, event_of
from tests.helpers import ray_cluster as rc

pytest.importorskip("ray")
# Two Ray nodes (~20 s to start here), 2.5 minutes in all on the loaded 2-core box.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

FIRST_TRIALS = 80  # More than the first driver finishes before it is killed.


def _records(run_dir: pathlib.Path) -> list[dict]:
    path = run_dir / "journal.jsonl"
    return JournalStorage(path).read() if path.exists() else []


def _of(records: list[dict], kind: EventKind) -> list[dict]:
    return [r for r in records if event_of(r) is kind]


def _markers(marker_dir: pathlib.Path, node: str) -> list[str]:
    return sorted(p.name for p in marker_dir.iterdir() if p.name.startswith(f"{node}-"))


@pytest.fixture
def cluster():
    # Ray's Unix sockets live under its temp dir: a short path of its own.
    root = pathlib.Path(tempfile.mkdtemp(prefix="snray-", dir="/tmp"))
    cluster = rc.LocalCluster(root)
    try:
        cluster.start("head")
        cluster.start("node1")
        yield cluster
    finally:
        cluster.close()  # Every node's process group, even when the test failed.
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def drivers():
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def _until(condition, what: str, timeout: float, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the driver exited ({process.returncode}) before {what}")
        assert time.monotonic() < deadline, f"no {what} within {timeout:g} s"
        time.sleep(0.2)


def test_two_nodes_a_lost_node_and_a_killed_driver(cluster, drivers, tmp_path):
    run_dir, markers = tmp_path / "run", tmp_path / "markers"
    markers.mkdir()

    def driver(num_trials: int, *extra: str) -> subprocess.Popen:
        args = [cluster.address, str(run_dir), str(num_trials), str(markers), "1.0", *extra]
        process = subprocess.Popen(
            [sys.executable, "-m", rc.__name__, *args],
            cwd=rc.ROOT,
            env=cluster.env,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / f"driver{len(drivers)}.err").open("wb"),
        )
        drivers.append(process)
        return process

    # 1. `sn.search(..., executor="ray", workers=2)` runs trials on both nodes.
    first = driver(FIRST_TRIALS)

    def ended_on(node: str) -> list[dict]:
        ends = _of(_records(run_dir), EventKind.END)
        return [e for e in ends if e["trial"]["metrics"]["node"] == node]

    _until(lambda: ended_on("head") and ended_on("node1"), "trial on each node", 240, first)

    # 2. node1 is killed while a trial runs there; the search goes on on the head.
    seen = len(_markers(markers, "node1"))
    _until(lambda: len(_markers(markers, "node1")) > seen, "new trial on node1", 60, first)
    cluster.kill("node1")
    _until(lambda: _of(_records(run_dir), EventKind.LOST), "lost trial", 120, first)
    lost = _of(_records(run_dir), EventKind.LOST)[0]
    ends_at_loss = len(_of(_records(run_dir), EventKind.END))
    _until(
        lambda: len(_of(_records(run_dir), EventKind.END)) >= ends_at_loss + 3,
        "progress after the loss",
        120,
        first,
    )
    assert "WorkerDied" in lost["error"], lost
    restart = [s for s in _of(_records(run_dir), EventKind.START) if s["trial"] == lost["trial"]][
        -1
    ]
    assert restart["attempt"] == 2 and restart.get("cause") == "worker_died", restart

    # 3. The driver is SIGKILLed and resumed against the same (now one-node) cluster, with
    # two actors: the second cannot be placed, is given up, and the search still ends.
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    before_kill = {e["trial"]["id"]: e["trial"] for e in _of(_records(run_dir), EventKind.END)}
    num_trials = len(before_kill) + 6  # Those cut short by the kill, and a few more.
    second = driver(num_trials, "10")
    assert second.wait(300) == 0, (tmp_path / "driver1.err").read_text()[-3000:]
    assert (
        "could not be placed on the Ray cluster within 10 s"
        in (tmp_path / "driver1.err").read_text()
    )

    records = _records(run_dir)
    ends = [e["trial"] for e in _of(records, EventKind.END)]
    counts = collections.Counter(t["id"] for t in ends)
    assert sorted(counts) == list(range(num_trials)), "a trial is missing"
    assert max(counts.values()) == 1, f"trials ended twice: {counts}"
    assert all(t["status"] == "completed" for t in ends)
    finished = {t["id"]: t for t in ends}
    assert all(finished[i] == t for i, t in before_kill.items()), "a finished trial changed"
    assert {t["metrics"]["node"] for t in ends} == {"head", "node1"}
    # The lost trial ran again, on the head, its first attempt counted as a worker death.
    retried = finished[lost["trial"]]
    assert retried["attempts"] >= 2 and retried["metrics"]["node"] == "head"
    assert [e["trial"]["metrics"]["node"] for e in _of(records, EventKind.END)][-3:] == ["head"] * 3

    # 4. The command line reaches the same cluster with --ray-address (token from the env).
    cli = subprocess.run(
        [sys.executable, "-c", "from symbolic_nas.cli import main; main()", "search",
         "tests.helpers.cli:choice_space", "--evaluator", "tests.helpers.cli:kernel_reward",
         "--num-trials", "2", "--workers", "1", "--ray-address", cluster.address,
         "--run-dir", str(tmp_path / "cli"), "--no-tensorboard", "--no-progress"],
        cwd=rc.ROOT, env=cluster.env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stdout + cli.stderr
    cli_ends = [e["trial"] for e in _of(_records(tmp_path / "cli"), EventKind.END)]
    assert len(cli_ends) == 2 and all(t["worker"].startswith("ray-") for t in cli_ends)

    # 5. Without the token (authentication off in the driver), the head refuses it.
    no_token = {**cluster.env, "RAY_AUTH_MODE": "disabled"}
    refused = subprocess.run(
        [sys.executable, "-c", "from symbolic_nas.cli import main; main()", "search",
         "tests.helpers.cli:choice_space", "--ray-address", cluster.address],
        cwd=rc.ROOT, env=no_token, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "needs RAY_AUTH_MODE=token and its token" in refused.stderr, refused.stderr[-2000:]
    assert "RAY_AUTH_MODE is 'disabled'" in refused.stderr
