"""End to end: logs written by TensorBoardCallback, served by a real TensorBoard server on
127.0.0.1, read through the hparams plugin's HTTP API (the requests its frontend sends),
and the HParams page rendered by headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import numpy as np
import pytest

import symbolic_nas as sn
from symbolic_nas.review.tensorboard import INACTIVE, TensorBoardCallback, trial_run
from symbolic_nas.storage.trial import TrialStatus
from tests.helpers.fake_search import StatsRandomSearch, conditional_space, fake_search

NUM_TRIALS = 10
STATUSES = ["STATUS_FAILURE", "STATUS_RUNNING", "STATUS_SUCCESS", "STATUS_UNKNOWN"]
WINDOW = (1400, 900)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server:
    def __init__(self, process: subprocess.Popen, port: int):
        self.process = process
        self.url = f"http://127.0.0.1:{port}"

    def post(self, route: str, body: dict) -> dict:
        request = urllib.request.Request(
            self.url + route, data=json.dumps(body).encode(), headers={"Content-Type": "text/plain"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def wait_for(self, route: str, body: dict, ready, timeout: float = 60.0) -> dict:
        """Posts until ``ready(answer)`` holds (the server loads logs in the background)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                output = self.process.stdout.read().decode(errors="replace")
                raise AssertionError(
                    f"tensorboard exited with {self.process.returncode}:\n{output}"
                )
            try:
                answer = self.post(route, body)
                if ready(answer):
                    return answer
            except (urllib.error.URLError, ConnectionError):
                answer = None
            if time.monotonic() > deadline:
                raise AssertionError(f"no ready answer from {route} in {timeout} s: {answer}")
            time.sleep(0.2)


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    logdir = str(tmp_path_factory.mktemp("run") / "tensorboard")
    codec = sn.encode(conditional_space())
    context = fake_search(
        [TensorBoardCallback(logdir)],
        codec=codec,
        num_trials=NUM_TRIALS,
        algorithm=StatsRandomSearch(seed=1),
    )
    return logdir, codec, context


@pytest.fixture(scope="module")
def server(search) -> Iterator[_Server]:
    logdir = search[0]
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorboard.main",
            f"--logdir={logdir}",
            "--host=127.0.0.1",
            f"--port={port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the data server child goes too
    )
    try:
        yield _Server(process, port)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def experiment(server) -> dict:
    return server.wait_for(
        "/data/plugin/hparams/experiment",
        {"experimentName": "", "hparamsLimit": 1000},
        lambda answer: bool(answer.get("hparamInfos")),
    )


def test_hparams_api_lists_every_trial_with_its_decisions_and_metrics(search, server, experiment):
    _, codec, context = search
    domains = {h["name"]: h["domainDiscrete"] for h in experiment["hparamInfos"]}
    assert domains == {d.name: [*d.labels, INACTIVE] for d in codec.decisions}
    metrics = [m["name"] for m in experiment["metricInfos"]]
    assert [m["tag"] for m in metrics] == ["trial/reward", "trial/accuracy", "trial/params"]
    shown = [m["displayName"] for m in experiment["metricInfos"]]
    assert shown == ["reward", "accuracy", "params"]
    request = {  # what the HParams dashboard posts
        "experimentName": "",
        "allowedStatuses": STATUSES,
        "colParams": [{"hparam": name, "includeInResult": True} for name in domains]
        + [{"metric": name, "includeInResult": True} for name in metrics],
        "startIndex": 0,
        "sliceSize": 100,
    }
    answer = server.wait_for(
        "/data/plugin/hparams/session_groups",
        request,
        lambda a: a.get("totalSize") == NUM_TRIALS,
    )
    groups = {g["name"]: g for g in answer["sessionGroups"]}
    assert sorted(groups) == [trial_run(t.id) for t in context.trials]
    for trial in context.trials:
        group = groups[trial_run(trial.id)]
        labels = codec.labels(trial.tokens)
        assert group["hparams"] == {d.name: labels.get(d.name, INACTIVE) for d in codec.decisions}
        (session,) = group["sessions"]
        values = {m["name"]["tag"]: m["value"] for m in session.get("metricValues", [])}
        if trial.status == TrialStatus.COMPLETED:
            assert session["status"] == "STATUS_SUCCESS"
            assert values["trial/reward"] == pytest.approx(trial.reward)
            assert values["trial/params"] == 1000 + trial.id
        else:
            assert session["status"] == "STATUS_FAILURE"
            assert "trial/reward" not in values


def _text_rows(gray: np.ndarray) -> int:
    """Number of separate bands of rows holding dark pixels (lines of text)."""
    dark = (gray < 128).any(axis=1)
    return int(np.count_nonzero(dark[1:] & ~dark[:-1]) + dark[0])


@pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="chromium is not installed (.ci/run installs it with apt-get install chromium)",
)
def test_chromium_screenshot_of_the_hparams_table(server, experiment, tmp_path):
    image_module = pytest.importorskip("PIL.Image", reason="Pillow (a tensorboard dependency)")
    shot = tmp_path / "hparams.png"
    command = [
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        f"--screenshot={shot}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--virtual-time-budget=10000",
        f"{server.url}/#hparams",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    with image_module.open(shot) as image:
        assert image.size == WINDOW
        gray = np.asarray(image.convert("L"))
    # The table's "Trial ID" column (right of the filter panel, under the header and the
    # view tabs) holds one line of text per trial; an empty dashboard has none there.
    trial_id_column = gray[140:, 290:440]
    assert _text_rows(trial_id_column) >= NUM_TRIALS
