"""The Ray executor on real clusters: per-trial overhead, time to the first trial, and the
speed-up of two nodes over one on MNIST children.

Every cluster is started here as in ``tests/test_ray_cluster.py``: ``ray start --block``
nodes on 127.0.0.1 with token authentication, killed at the end.

1. Per-trial overhead with a trivial evaluator (tokens in, a float out): ``--trials``
   trials on 2 worker processes (``executor="process"``) against 2 Ray actors on a
   running one-node cluster of 2 CPUs. Goal: Ray within 2x of the process executor (and
   far below Ray Tune's ~3 s per trial with fresh workers).
2. Time from ``sn.search`` to the first trial's start (and end) on that running cluster.
3. ``--mnist-trials`` MNIST children (the MNIST example's space and evaluator, random
   search, seed 0) on one node (1 CPU, 1 actor) and on two nodes (1 CPU each, 2 actors).

Run: python benchmarks/ray_overhead.py [--trials 200] [--mnist-trials 24]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import secrets
import shutil
import sys
import tempfile
import time
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))  # For `examples` and `tests.helpers`.

import symbolic_nas as sn  # noqa: E402
from examples import mnist_search  # noqa: E402
from tests.helpers.ray_cluster import LocalCluster  # noqa: E402


@sn.evaluator(input="tokens")
def trivial(tokens: list[int]) -> float:
    """No work at all: what a trial costs is the executor's."""
    return float(sum(tokens))


def space() -> dict[str, Any]:
    return {f"d{i}": sn.oneof([0, 1, 2, 3]) for i in range(6)}


def timed_search(evaluate: Any, trials: int, **options: Any) -> dict[str, float]:
    """Seconds per trial over the trials' span and over the whole call, and from the call
    to the first trial's start and end."""
    start = time.time()
    result = sn.search(
        mnist_search.space() if evaluate is not trivial else space(),
        evaluate,
        algorithm="random",
        num_trials=trials,
        seed=0,
        progress=False,
        tensorboard=False,
        **options,
    )
    wall = time.time() - start
    assert not result.failed, [t.error for t in result.failed]
    first = min(t.started for t in result.trials)
    last = max(t.started + t.duration for t in result.trials)
    out = {
        "span": (last - first) / trials,
        "wall": wall / trials,
        "to_first_start": first - start,
        "to_first_end": min(t.started + t.duration for t in result.trials) - start,
    }
    if evaluate is not trivial:
        out["accuracy"] = sum(t.metrics["accuracy"] for t in result.trials) / trials
    return out


def cluster(root: pathlib.Path, token: pathlib.Path, nodes: dict[str, int]) -> LocalCluster:
    c = LocalCluster(pathlib.Path(tempfile.mkdtemp(prefix="c", dir=root)), token=token)
    try:
        for name, cpus in nodes.items():
            c.start(name, num_cpus=cpus)
    except BaseException:
        c.close()
        raise
    return c


def connect(c: LocalCluster, cpus: int) -> None:
    import ray

    ray.init(address=c.address, log_to_driver=False)
    deadline = time.monotonic() + 120
    while ray.cluster_resources().get("CPU", 0) < cpus:
        assert time.monotonic() < deadline, "the nodes did not join"
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--mnist-trials", type=int, default=24)
    args = parser.parse_args()
    root = pathlib.Path(tempfile.mkdtemp(prefix="snbench-", dir="/tmp"))
    token = root / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    # This process is the driver of every cluster: their environment (token, loopback).
    os.environ.update(LocalCluster(root, token=token).env)
    import ray

    print(f"1. {args.trials} trivial trials, 2 workers")
    process = timed_search(trivial, args.trials, executor="process", workers=2)
    print(
        f"   process executor: {process['span'] * 1e3:.1f} ms/trial over the trials' span "
        f"({process['wall'] * 1e3:.1f} ms with start-up)"
    )
    c = cluster(root, token, {"head": 2})
    try:
        connect(c, 2)
        on_ray = timed_search(trivial, args.trials, executor="ray", workers=2)
        again = timed_search(trivial, args.trials, executor="ray", workers=2)
        ray.shutdown()
    finally:
        c.close()
    for name, r in (("first search", on_ray), ("second search", again)):
        print(
            f"   Ray executor ({name}): {r['span'] * 1e3:.1f} ms/trial over the span "
            f"({r['wall'] * 1e3:.1f} ms with start-up); "
            f"{r['span'] / process['span']:.2f}x the process executor's (goal <= 2x)"
        )
    print("2. from sn.search to the first trial on a running one-node cluster:")
    for name, r in (("first search", on_ray), ("second search", again)):
        print(f"   {name}: start {r['to_first_start']:.2f} s, end {r['to_first_end']:.2f} s")

    print(f"3. {args.mnist_trials} MNIST children, random search, seed 0")
    results = {}
    for nodes in ({"head": 1}, {"head": 1, "node1": 1}):
        c = cluster(root, token, nodes)
        try:
            connect(c, len(nodes))
            results[len(nodes)] = timed_search(
                mnist_search.Evaluate(), args.mnist_trials, executor="ray", workers=len(nodes)
            )
            ray.shutdown()
        finally:
            c.close()
        r = results[len(nodes)]
        print(
            f"   {len(nodes)} node(s): {1 / r['span']:.3f} trials/s over the span "
            f"({1 / r['wall']:.3f} with start-up), mean accuracy {r['accuracy']:.4f}"
        )
    print(
        f"   speed-up: {results[1]['span'] / results[2]['span']:.2f}x "
        f"({results[1]['wall'] / results[2]['wall']:.2f}x with start-up)"
    )
    shutil.rmtree(root, ignore_errors=True)  # Tokens, logs, Ray's session files.


if __name__ == "__main__":
    main()
