"""End to end: logs written by TensorBoardCallback, served by a real TensorBoard server on
127.0.0.1, read through the scalars and hparams plugins' HTTP APIs (the requests their
frontends send), and the HParams page rendered by headless Chromium: the table it shows is
read from the page's DOM, and its screenshot kept as an artefact (the test's tmp dir, or
``$SYMBOLIC_NAS_TEST_ARTIFACTS``)."""

from __future__ import annotations

import json
import math
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from PIL import Image

import symbolic_nas as sn
from symbolic_nas.review.tensorboard import INACTIVE, TensorBoardCallback, trial_run
from symbolic_nas.storage.trial import TrialStatus
from tests.helpers.chromium import Chromium
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

    def get(self, route: str) -> dict:
        with urllib.request.urlopen(self.url + route, timeout=10) as response:
            return json.load(response)

    def wait_for_get(self, route: str, ready, timeout: float = 60.0) -> dict:
        """Gets until ``ready(answer)`` holds (the server loads logs in the background)."""
        return self.wait_for(route, None, ready, timeout)

    def wait_for(self, route: str, body: dict | None, ready, timeout: float = 60.0) -> dict:
        """Posts ``body`` (gets if None) until ``ready(answer)`` holds (the server loads logs
        in the background)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                output = self.process.stdout.read().decode(errors="replace")
                raise AssertionError(
                    f"tensorboard exited with {self.process.returncode}:\n{output}"
                )
            try:
                answer = self.get(route) if body is None else self.post(route, body)
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
    strings = [d for d in codec.decisions if d.kind != "float"]
    domains = {h["name"]: h.get("domainDiscrete") for h in experiment["hparamInfos"]}
    assert domains == {
        **{d.name: [*d.labels, INACTIVE] for d in strings},
        "lr": None,  # a float: a number in its interval, and its log10
        "log10(lr)": None,
    }
    intervals = {h["name"]: h.get("domainInterval") for h in experiment["hparamInfos"]}
    assert intervals["log10(lr)"] == {"minValue": pytest.approx(-4), "maxValue": -1}
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
        lr = codec.materialize(trial.tokens)["lr"]
        assert group["hparams"] == {
            **{d.name: labels.get(d.name, INACTIVE) for d in strings},
            "lr": pytest.approx(lr),
            "log10(lr)": pytest.approx(math.log10(lr)),
        }
        (session,) = group["sessions"]
        values = {m["name"]["tag"]: m["value"] for m in session.get("metricValues", [])}
        if trial.status == TrialStatus.COMPLETED:
            assert session["status"] == "STATUS_SUCCESS"
            assert values["trial/reward"] == pytest.approx(trial.reward)
            assert values["trial/params"] == 1000 + trial.id
        else:
            assert session["status"] == "STATUS_FAILURE"
            assert "trial/reward" not in values


def test_scalars_api_lists_each_completed_trials_metrics_and_the_search_curves(search, server):
    _, _, context = search
    tags = server.wait_for_get(
        "/data/plugin/scalars/tags", lambda answer: "." in answer and len(answer) > NUM_TRIALS // 2
    )
    completed = [t for t in context.trials if t.status == TrialStatus.COMPLETED]
    assert sorted(set(tags) - {"."}) == [trial_run(t.id) for t in completed]
    for trial in completed:
        assert set(tags[trial_run(trial.id)]) == {"trial/reward", "trial/accuracy", "trial/params"}
    search_tags = {"reward", "best_reward", "failures", "trials_per_second", "trial_seconds"}
    statistics = {"entropy", "epsilon", "skip_rate"}  # StatsRandomSearch.stats()
    assert set(tags["."]) == {f"search/{t}" for t in search_tags} | {
        f"algorithm/{s}" for s in statistics
    }


# The HParams table as the page shows it: the header and each visible row's cell texts,
# read from the vaadin-grid inside the dashboard's shadow roots (null until it exists).
HPARAMS_TABLE = """(() => {
  const find = (root) => {
    const grid = root.querySelector('vaadin-grid.session-group-table');
    if (grid) return grid;
    for (const element of root.querySelectorAll('*')) {
      const inner = element.shadowRoot && find(element.shadowRoot);
      if (inner) return inner;
    }
    return null;
  };
  const grid = find(document);
  if (!grid) return null;
  const text = (cell) => {
    const slot = cell.querySelector('slot');
    const nodes = slot ? slot.assignedNodes({flatten: true}) : [];
    return nodes.map((node) => node.textContent.trim()).join('');
  };
  const rows = (selector) => [...grid.shadowRoot.querySelectorAll(selector)]
    .filter((row) => !row.hidden)
    .map((row) => [...row.querySelectorAll('th, td')].map(text));
  return {header: rows('thead tr')[0] || [], rows: rows('tbody#items tr')};
})()"""


def _artefacts(tmp_path: pathlib.Path) -> pathlib.Path:
    """Where the screenshot goes: ``$SYMBOLIC_NAS_TEST_ARTIFACTS`` if set, else the tmp dir."""
    folder = os.environ.get("SYMBOLIC_NAS_TEST_ARTIFACTS")
    if not folder:
        return tmp_path
    path = pathlib.Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="chromium is not installed (.ci/run installs it with apt-get install chromium)",
)
def test_the_hparams_page_shows_each_trial_with_its_decisions_and_metrics(
    search, server, experiment, tmp_path
):
    _, codec, context = search
    shot = _artefacts(tmp_path) / "hparams.png"
    with Chromium(tmp_path / "chromium-profile", window=WINDOW) as browser:
        browser.open(f"{server.url}/#hparams")
        table = browser.wait_for(
            HPARAMS_TABLE, lambda t: bool(t) and len(t["rows"]) >= NUM_TRIALS, timeout=90
        )
        browser.screenshot(shot)  # Kept for a person to look at (not compared).
    with Image.open(shot) as image:
        assert image.size == WINDOW
    header = table["header"]
    metrics = ["reward", "accuracy", "params"]
    assert header[:2] == ["Trial ID", "Show Metrics"] and header[-3:] == metrics, header
    hparams = header[2:-3]  # The dashboard shows the first few hparams by default.
    assert (
        len(hparams) >= 3
        and hparams == [h["name"] for h in experiment["hparamInfos"]][: len(hparams)]
    )
    by_id = {trial_run(t.id): t for t in context.trials}
    shown = [dict(zip(header, cells)) for cells in table["rows"]]
    assert [row["Trial ID"] for row in shown] == sorted(by_id)
    for row in shown:
        trial = by_id[row["Trial ID"]]
        labels: dict[str, object] = dict(codec.labels(trial.tokens))
        lr = codec.materialize(trial.tokens)["lr"]  # floats are numbers (4 decimals)
        numbers = {"lr": lr, "log10(lr)": math.log10(lr)}
        labels.update({n: pytest.approx(v, abs=1e-4) for n, v in numbers.items()})
        cells = [float(row[n]) if "lr" in n else row[n] for n in hparams]
        assert cells == [labels.get(n, INACTIVE) for n in hparams]
        if trial.status == TrialStatus.COMPLETED:
            assert float(row["reward"]) == pytest.approx(trial.reward, rel=1e-4)
            assert float(row["accuracy"]) == pytest.approx(trial.metrics["accuracy"], rel=1e-4)
            assert float(row["params"]) == 1000 + trial.id
        else:
            assert [row[m] for m in metrics] == ["", "", ""]
