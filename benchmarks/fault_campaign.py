"""Fault campaign: SIGKILLed drivers, two drivers, escaping evaluator errors, Ctrl-C,
a payload in a run directory, workers killed while starting, and user errors.

Every driver is a subprocess in a session of its own, running ``sn.search`` (random
search over 4^6 architectures, a cheap evaluator that sleeps 20 ms) on a run
directory with ``resume=True``. The campaign kills it with SIGKILL at random moments
(some right after it starts, most after it finished a few more trials), resumes it,
and at the end lets one session finish the run. Then it checks the journal: every
trial 0..N-1 ended exactly once (0 lost, 0 duplicated), a finished trial's record
never changed across sessions, and each trial has the architecture of an
uninterrupted search (random search proposes the same tokens for an id whatever the
order of feedback). Processes left in a killed driver's session after a grace period
are counted, then killed.

The other cases each check one fault of issue 9 end to end (see ``CASES``). The
two-driver case needs the run-directory lock; without it the second driver is
accepted and the row says "not yet".

Run: python benchmarks/fault_campaign.py [--quick] [--kills 5] [--trials 60]
         [--executors inline process ray] [--seed 0]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
SPACE, REWARD = "fault_campaign_code:wide_space", "fault_campaign_code:slow_reward"
RANGED = "fault_campaign_code:ranged_space"
CLI = str(pathlib.Path(sys.executable).parent / "symbolic-nas")
ESCAPE_ERRORS = {
    "bad_str": "BadStr: BadStr({x}) (its str() raised RuntimeError)",
    "bad_repr": "BadRepr (its str() raised RuntimeError, and so did its repr())",
    "exit": "SystemExit: 3",
    "interrupt": "KeyboardInterrupt",
}


# ---------------------------------------------------------------------- plumbing


def records(run_dir: pathlib.Path) -> list[dict[str, Any]]:
    """The journal's records (a torn last line is skipped; the file is never changed)."""
    path = run_dir / "journal.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_bytes().split(b"\n")[:-1]:
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out


def ends(run_dir: pathlib.Path) -> list[dict[str, Any]]:
    return [r["trial"] for r in records(run_dir) if r.get("event") == "end"]


def session_pids(session: int) -> list[int]:
    """Processes of a session (the driver was started as its leader)."""
    pids = []
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[3]) == session and fields[0] != "Z":
                pids.append(int(entry.name))
    return pids


def starting_workers(driver: int) -> list[int]:
    """Worker processes the driver spawned (children running multiprocessing's spawn_main)."""
    found = []
    for pid in session_pids(driver):
        try:
            cmdline = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            found.append(pid)
    return found


def kill_session(session: int, grace: float) -> list[str]:
    """Waits up to ``grace`` s for the session's processes to exit, SIGKILLs the rest;
    returns the names of those that were left."""
    deadline = time.monotonic() + grace
    while session_pids(session) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = []
    for pid in session_pids(session):
        with contextlib.suppress(OSError):
            left.append(pathlib.Path(f"/proc/{pid}/comm").read_text().strip())
            os.kill(pid, signal.SIGKILL)
    return left


class Campaign:
    def __init__(self, args: argparse.Namespace, work: pathlib.Path) -> None:
        self.args, self.work = args, work
        self.rng = random.Random(args.seed)
        self.rows: list[tuple[str, str, str]] = []
        path = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        self.env = {**os.environ, "PYTHONPATH": path}

    def driver(self, kind: str, run_dir: pathlib.Path, trials: int, executor: str,
               workers: int, sleep: float = 0.02) -> subprocess.Popen:  # fmt: skip
        command = [sys.executable, str(HERE / "fault_campaign_code.py"), kind, str(run_dir),
                   str(trials), executor, str(workers)]  # fmt: skip
        return subprocess.Popen(command, cwd=self.work, env={**self.env, "CAMPAIGN_SLEEP":
                                str(sleep)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)  # fmt: skip

    def cli(self, *args: str, cwd: pathlib.Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([CLI, *args], cwd=cwd or self.work, env=self.env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip

    def row(self, case: str, check: Callable[[], tuple[str, str]]) -> None:
        if self.args.only not in case:
            return
        start = time.perf_counter()
        try:
            result, detail = check()
        except Exception as e:  # a failing case is a row, not the end of the campaign
            result, detail = "FAIL", f"{type(e).__name__}: {e}"
        detail += f" [{time.perf_counter() - start:.0f} s]"
        self.rows.append((case, result, detail))
        print(f"{case:<52} {result:<8} {detail}", flush=True)


def wait_for(condition: Callable[[], bool], process: subprocess.Popen | None, what: str,
             timeout: float = 180.0) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the driver exited ({process.returncode}) before {what}: "
                               f"{process.stderr.read().decode()[-500:]}")  # fmt: skip
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout:.0f} s")
        time.sleep(0.02)


# ---------------------------------------------------------------------- cases


def sigkill_driver(c: Campaign, executor: str, workers: int, kills: int) -> tuple[str, str]:
    run_dir, trials = c.work / f"kill-{executor}", c.args.trials
    first_seen: dict[int, dict[str, Any]] = {}
    duplicated = changed = 0
    leftovers: list[str] = []
    for k in range(kills):
        before = len(ends(run_dir))
        process = c.driver("reward", run_dir, trials, executor, workers)
        if k % 3 == 2:  # now and then, at a random moment of start-up or replay
            time.sleep(c.rng.uniform(0.0, 3.0))
        else:
            wait_for(lambda b=before: len(ends(run_dir)) >= min(trials - 1, b + 3), process,
                     "progress")  # fmt: skip
            time.sleep(c.rng.uniform(0.0, 0.3))
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        leftovers += kill_session(process.pid, grace=30.0)
        done = ends(run_dir)
        duplicated += len(done) - len({e["id"] for e in done})
        changed += sum(first_seen.setdefault(e["id"], e) != e for e in done)
    final = c.driver("reward", run_dir, trials, executor, workers)
    _, stderr = final.communicate(timeout=600)
    if final.returncode != 0:
        raise RuntimeError(f"the final session failed: {stderr.decode()[-500:]}")
    leftovers += kill_session(final.pid, grace=30.0)
    done = ends(run_dir)
    ids = [e["id"] for e in done]
    duplicated += len(ids) - len(set(ids))
    changed += sum(first_seen.get(e["id"], e) != e for e in done)
    lost = len(set(range(trials)) - set(ids))
    import fault_campaign_code

    import symbolic_nas as sn

    reference = sn.search(fault_campaign_code.wide_space(), lambda tokens: 0.0, algorithm="random",
                          num_trials=trials, seed=0, progress=False)  # fmt: skip
    by_id = {e["id"]: e["tokens"] for e in done}
    other = sum(by_id.get(t.id) != t.tokens for t in reference.trials)
    rerun = sum(e["attempts"] > 1 for e in done)
    ok = lost == duplicated == changed == other == 0
    names = ", ".join(sorted(set(leftovers)))
    return ("ok" if ok else "FAIL"), (
        f"{kills} x SIGKILL: {lost} lost, {duplicated} duplicated, {changed} changed, {other} "
        f"other tokens; {rerun} re-run; {len(leftovers)} processes left after 30 s"
        + (f" ({names})" if names else "")
    )


def two_drivers(c: Campaign) -> tuple[str, str]:
    run_dir = c.work / "two"
    first = c.driver("reward", run_dir, 2000, "inline", 1, sleep=0.05)
    try:
        wait_for(lambda: len(ends(run_dir)) >= 3, first, "progress")
        second = c.driver("reward", run_dir, 2000, "inline", 1, sleep=0.05)
        try:
            _, stderr = second.communicate(timeout=12)
            text = stderr.decode()
            if second.returncode != 0 and str(first.pid) in text:
                last = text.strip().splitlines()[-1]
                return "ok", "second driver refused: ..." + last[last.find(" is in use") :][:90]
            return "FAIL", f"second driver exited {second.returncode}: {text[-200:]}"
        except subprocess.TimeoutExpired:
            ids = [e["id"] for e in ends(run_dir)]
            twice = len(ids) - len(set(ids))
            locked = any("lock" in p.name for p in run_dir.iterdir())
            detail = f"second driver accepted ({twice} trials ended twice in 12 s)"
            return ("FAIL" if locked else "not yet"), detail + (
                "" if locked else "; needs the run-directory lock"
            )
        finally:
            if second.poll() is None:
                os.kill(second.pid, signal.SIGKILL)
            second.wait()
            kill_session(second.pid, grace=0.0)
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        kill_session(first.pid, grace=0.0)


def escaping_errors(c: Campaign, executor: str, workers: int) -> tuple[str, str]:
    run_dir = c.work / f"escapes-{executor}"
    process = c.driver("escapes", run_dir, 30, executor, workers)
    _, stderr = process.communicate(timeout=300)
    if process.returncode != 0:
        raise RuntimeError(f"the search stopped: {stderr.decode()[-300:]}")
    kinds = ("ok", "bad_str", "bad_repr", "exit", "interrupt")
    done = ends(run_dir)
    wrong = [e for e in done if e["status"] == "failed" and e["error"] != ESCAPE_ERRORS[
        kinds[e["tokens"][0]]].format(x=e["tokens"][1])]  # fmt: skip
    lost = [r for r in records(run_dir) if r["event"] == "lost"]
    seen = sorted({kinds[e["tokens"][0]] for e in done} - {"ok"})
    ok = len(done) == 30 and not wrong and not lost and all(e["attempts"] == 1 for e in done)
    ok = ok and len(seen) == 4
    return ("ok" if ok else "FAIL"), (
        f"{sum(e['status'] == 'failed' for e in done)} of {len(done)} trials failed with their "
        f"own error ({', '.join(seen)}); {len(wrong)} wrong texts, {len(lost)} lost"
    )


def users_ctrl_c(c: Campaign) -> tuple[str, str]:
    run_dir = c.work / "ctrl-c"
    process = c.driver("reward", run_dir, 6, "inline", 1, sleep=1.0)
    wait_for(lambda: len(ends(run_dir)) >= 1, process, "a finished trial")
    time.sleep(0.3)
    os.kill(process.pid, signal.SIGINT)  # as a Ctrl-C in the driver's terminal would
    _, stderr = process.communicate(timeout=60)
    stops = [r.get("reason") for r in records(run_dir) if r["event"] == "stop"]
    stopped_clean = process.returncode != 0 and "KeyboardInterrupt" in stderr.decode()
    stopped_clean = stopped_clean and stops == ["interrupted"]
    finished = len(ends(run_dir))
    resumed = c.driver("reward", run_dir, 6, "inline", 1)
    resumed.communicate(timeout=120)
    done = ends(run_dir)
    ok = stopped_clean and sorted(e["id"] for e in done) == list(range(6))
    rerun = [e["id"] for e in done if e["attempts"] > 1]
    return ("ok" if ok else "FAIL"), (
        f"stopped ({stops}) after {finished} trials; the interrupted trial {rerun} ran again "
        "on resume"
    )


def resume_payload(c: Campaign) -> tuple[str, str]:
    run_dir, marker = c.work / "received", c.work / "payload-ran"
    search = ["search", SPACE, "--evaluator", REWARD,
              "--algorithm", "random", "--num-trials", "2", "--run-dir", str(run_dir),
              "--no-tensorboard", "--no-progress"]  # fmt: skip
    assert c.cli(*search).returncode == 0
    (run_dir / "payload.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n"
        "from fault_campaign_code import wide_space, slow_reward\n"
    )
    config = json.loads((run_dir / "config.json").read_text())
    config["metadata"]["cli"].update(cwd=str(run_dir), space="payload:wide_space")
    (run_dir / "config.json").write_text(json.dumps(config))
    results = [c.cli("resume", str(run_dir), "--num-trials", "3")]
    config["metadata"]["cli"].update(space="received.payload:wide_space")
    (run_dir / "config.json").write_text(json.dumps(config))
    results.append(c.cli("resume", str(run_dir), "--num-trials", "3"))
    results.append(c.cli("report", str(run_dir)))
    refused = [r.returncode == 1 and "Traceback" not in r.stderr for r in results[:2]]
    ok = all(refused) and results[2].returncode == 0 and not marker.exists()
    return ("ok" if ok else "FAIL"), (
        f"{sum(refused)} of 2 resumes refused, report read it; payload ran: {marker.exists()}"
    )


def killed_starters(c: Campaign, forever: bool) -> tuple[str, str]:
    run_dir = c.work / f"starters-{forever}"
    if forever:
        command = [CLI, "search", SPACE, "--evaluator",
                   REWARD, "--algorithm", "random", "--num-trials", "10",
                   "--workers", "2", "--executor", "process", "--no-tensorboard",
                   "--no-progress"]  # fmt: skip
        process = subprocess.Popen(command, cwd=c.work, env=c.env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    else:
        process = c.driver("reward", run_dir, 20, "process", 2)
    killed: set[int] = set()
    while process.poll() is None and (forever or len(killed) < 3):
        for pid in set(starting_workers(process.pid)) - killed:
            killed.add(pid)
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)
    _, stderr = process.communicate(timeout=300)
    kill_session(process.pid, grace=10.0)
    text = stderr.decode() if isinstance(stderr, bytes) else stderr
    if forever:
        lines = [line for line in text.strip().splitlines() if line.strip()]
        ok = process.returncode == 1 and "Traceback" not in text and len(lines) == 1
        ok = ok and "times in a row while starting" in lines[-1] and "giving up" in lines[-1]
        return ("ok" if ok else "FAIL"), f"{len(killed)} kills; the CLI printed: {lines[-1]!r}"
    done = ends(run_dir)
    lost = [r for r in records(run_dir) if r["event"] == "lost"]
    ok = process.returncode == 0 and sorted(e["id"] for e in done) == list(range(20))
    ok = ok and not lost and all(e["attempts"] == 1 for e in done)
    return ("ok" if ok else "FAIL"), (
        f"{len(killed)} workers killed while starting, replaced; {len(lost)} lost, "
        f"{sum(e['attempts'] > 1 for e in done)} attempts counted"
    )


def cli_messages(c: Campaign) -> list[tuple[str, Callable[[], tuple[str, str]]]]:
    run_dir = c.work / "cli-run"
    base = ["--evaluator", REWARD, "--algorithm", "random",
            "--no-tensorboard", "--no-progress"]  # fmt: skip

    def prepare() -> None:
        if not run_dir.exists():
            c.cli("search", SPACE, *base, "--num-trials", "6",
                  "--run-dir", str(run_dir))  # fmt: skip

    def corrupt_journal() -> list[str]:
        prepare()
        damaged = c.work / "cli-corrupt"
        if not damaged.exists():
            subprocess.run(["cp", "-r", str(run_dir), str(damaged)], check=True)
            journal = damaged / "journal.jsonl"
            lines = journal.read_text().splitlines()
            journal.write_text("\n".join([*lines[:2], "garbage", *lines[3:]]) + "\n")
        return ["report", str(damaged)]

    cases: list[tuple[str, Callable[[], list[str]], str]] = [
        ("--space-arg bogus=1", lambda: ["search", RANGED, *base,
         "--space-arg", "bogus=1"], "its arguments are: high"),
        ("a space factory raising", lambda: ["search", RANGED, *base,
         "--space-arg", "high=0"], "failed with high=0: ValueError"),
        ("report on a corrupt journal", corrupt_journal, "is corrupt at line 3"),
        ("report --top -1", lambda: (prepare(), ["report", str(run_dir), "--top", "-1"])[1],
         "-1 is not in the range"),
        ("resume --num-trials 2 (6 finished)", lambda: (prepare(), ["resume", str(run_dir),
         "--num-trials", "2"])[1], "must be at least the 6 trials"),
    ]  # fmt: skip

    def check(make: Callable[[], list[str]], message: str) -> tuple[str, str]:
        result = c.cli(*make())
        text = " ".join(result.stderr.split())
        ok = result.returncode in (1, 2) and "Traceback" not in text and message in text
        return ("ok" if ok else "FAIL"), text[text.find("Error") :][:100]

    return [(f"CLI: {name}", lambda m=make, s=msg: check(m, s)) for name, make, msg in cases]


def api_messages() -> tuple[str, str]:
    import symbolic_nas as sn

    space = {"k": sn.oneof([1, 2])}
    attempts = {
        "callbacks": lambda: sn.search(space, lambda m: 0.0, num_trials=1, callbacks=None),
        "tokens": lambda: sn.encode(space).validate(None),
        "hints": lambda: sn.oneof([1, 2], hints="share"),
        "metadata['run']": lambda: sn.search(
            space, lambda m: 0.0, num_trials=1, metadata={"run": {1, 2}}
        ),
    }
    named = []
    for name, attempt in attempts.items():
        try:
            attempt()
        except ValueError as e:
            named.append(f"`{name}`" in str(e))
    ok = named == [True] * len(attempts)
    return ("ok" if ok else "FAIL"), f"{sum(named)} of {len(attempts)} errors name the parameter"


def damaged_run(c: Campaign) -> tuple[str, str]:
    import symbolic_nas as sn
    from symbolic_nas.storage.rundir import ResumeError

    run_dir = c.work / "damaged"

    def run(trials: int) -> Any:
        return sn.search({"k": sn.oneof(list(range(9)))}, lambda m: m["k"], algorithm="random",
                         num_trials=trials, run_dir=run_dir, resume=True, progress=False,
                         tensorboard=False)  # fmt: skip

    run(4)
    journal, checkpoint = run_dir / "journal.jsonl", run_dir / "checkpoint.pt"
    good = journal.read_text()
    run_id = json.loads((run_dir / "config.json").read_text()).get("run_id")
    journal.write_text(good + json.dumps({"event": "end", "trial": 5, "run_id": run_id}) + "\n")
    try:
        run(6)
        shape = "accepted"
    except ValueError as e:
        shape = "named" if "journal.jsonl" in str(e) and "at line" in str(e) else str(e)
    journal.write_text(good)
    checkpoint.write_bytes(b"garbage")
    try:
        run(6)
        unreadable = "accepted"
    except ResumeError as e:
        unreadable = "says so" if "delete it" in str(e) else str(e)
    checkpoint.unlink()
    recovered = len(run(6).trials) == 6
    ok = shape == "named" and unreadable == "says so" and recovered
    return ("ok" if ok else "FAIL"), (
        f"wrong-shape record: {shape} file and line; unreadable checkpoint: {unreadable}, "
        f"deleted: journal-only replay recovered the run: {recovered}"
    )


# ---------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 kill, 30 trials, no Ray.")
    parser.add_argument("--kills", type=int, default=None, help="SIGKILLs per executor (5).")
    parser.add_argument("--trials", type=int, default=None, help="Trials per run (60).")
    parser.add_argument("--executors", nargs="+", default=None,
                        choices=["inline", "process", "ray"])  # fmt: skip
    parser.add_argument("--only", default="", help="Run only the cases whose name has this.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.kills = args.kills if args.kills is not None else (1 if args.quick else 5)
    args.trials = args.trials if args.trials is not None else (30 if args.quick else 60)
    if args.executors is None:
        args.executors = ["inline", "process"] if args.quick else ["inline", "process", "ray"]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fault-campaign-") as tmp:
        c = Campaign(args, pathlib.Path(tmp))
        print(f"{'case':<52} {'result':<8} detail", flush=True)
        labels = {"inline": "inline", "process": "2 process workers", "ray": "Ray, 2 actors"}
        for executor in args.executors:
            workers = 1 if executor == "inline" else 2
            c.row(f"SIGKILL driver, {labels[executor]}",
                  lambda e=executor, w=workers: sigkill_driver(c, e, w, args.kills))  # fmt: skip
        c.row("two drivers on one run directory", lambda: two_drivers(c))
        c.row("evaluator errors escaping, inline", lambda: escaping_errors(c, "inline", 1))
        c.row("evaluator errors escaping, 2 process workers",
              lambda: escaping_errors(c, "process", 2))  # fmt: skip
        c.row("user's Ctrl-C (SIGINT) during an inline trial", lambda: users_ctrl_c(c))
        c.row("resume: payload module in the run directory", lambda: resume_payload(c))
        c.row("workers SIGKILLed while starting", lambda: killed_starters(c, False))
        c.row("workers SIGKILLed while starting, always (CLI)", lambda: killed_starters(c, True))
        for name, check in cli_messages(c):
            c.row(name, check)
        c.row("API: callbacks, validate, hints, metadata", api_messages)
        c.row("wrong-shape journal record, bad checkpoint", lambda: damaged_run(c))
    failed = sum(result == "FAIL" for _, result, _ in c.rows)
    pending = sum(result == "not yet" for _, result, _ in c.rows)
    print(f"\n{len(c.rows)} cases: {len(c.rows) - failed - pending} ok, {failed} failed, "
          f"{pending} not yet; {time.perf_counter() - start:.0f} s")  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
