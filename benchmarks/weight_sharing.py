"""Weight sharing against stand-alone training: ranking, cost, and the two-stage flow.

On the embedded digits (14x14, as in ``examples/mnist_search.py``), for two spaces:
the main job's annotated CNN (``examples/mnist_search.space``) and the NAS-Bench-201
cell network at small width (``C=8, N=1``, one input channel).

1. **Ground truth.** A fixed random sample of distinct architectures is trained
   stand-alone twice (seeds 1 and 2: initial weights and batch order); the Kendall
   tau between the two runs is the noise ceiling.
2. **Ranking.** A pool is trained by random search with weight sharing (uniform
   single paths, as Li & Talwalkar and SPOS train their supernets), then every sampled
   architecture is scored on it with ``train_steps=0``; with batch norm recalibrated
   per child and with batch statistics only (same pool). Tau against each
   stand-alone run (mean of the two, comparable with the ceiling).
3. **Cost.** Architectures scored per CPU-second (``time.process_time``, one torch
   thread), shared (the ENAS loop's trials; scoring on a trained pool) vs stand-alone.
   Also the per-trial overhead of building a child from the pool vs one training step.
4. **Outcome.** Per seed: the two-stage flow (``reinforce`` with shared weights, then
   its ``top(k, distinct=True)`` retrained stand-alone with the ``fixed`` algorithm,
   the best by validation accuracy picked) against ``reinforce`` with stand-alone
   training given the same CPU time; the held-out test accuracy of each pick.

Run::

    nice -n 5 python benchmarks/weight_sharing.py          # the full benchmark
    python benchmarks/weight_sharing.py --quick            # a smoke run (about a minute)
"""

from __future__ import annotations

import argparse
import json
import pathlib
import random
import statistics
import sys
import tempfile
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

sys.path.append(str(pathlib.Path(__file__).resolve().parents[1]))  # For `examples`.

import symbolic_nas as sn
from examples.mnist_search import digits14
from examples.mnist_search import space as cnn_space
from symbolic_nas import algorithms, spaces


def digits16() -> tuple:
    """The 14x14 digits padded to 16x16 (background value): NAS-Bench-201's two
    reductions need a side divisible by 4."""
    return tuple((F.pad(x, (1, 1, 1, 1), value=float(x.min())), y) for x, y in digits14())


DATA = {"annotated_cnn": digits14, "nasbench201_c8n1": digits16}


def kendall_tau(a: list[float], b: list[float]) -> float:
    """Kendall's tau-b of two equally long lists (ties counted as neither)."""
    concordant = discordant = ties_a = ties_b = 0
    for i in range(len(a)):
        for j in range(i + 1, len(a)):
            da, db = a[i] - a[j], b[i] - b[j]
            if da == 0 and db == 0:
                continue
            if da == 0:
                ties_a += 1
            elif db == 0:
                ties_b += 1
            elif (da > 0) == (db > 0):
                concordant += 1
            else:
                discordant += 1
    n0 = concordant + discordant
    denominator = ((n0 + ties_a) * (n0 + ties_b)) ** 0.5
    return (concordant - discordant) / denominator if denominator else 0.0


class StandAlone:
    """Stand-alone training of one child (1 epoch on the 4,000 training digits)."""

    def __init__(self, data: Any, seed: int, epochs: int = 1) -> None:
        self.trainer = sn.Trainer(
            data=data, epochs=epochs, batch_size=64, lr=3e-3, seed=seed,
            eval_batch_size=500,
        )  # fmt: skip

    def __call__(self, model: nn.Module) -> dict[str, Any]:
        metrics = self.trainer(model)
        metrics["test_accuracy"] = self.trainer.test_accuracy(model)
        return metrics


def clip_of(data: Any) -> float | None:
    """Gradient clipping of the pool: the annotated CNN (no batch norm) gets 5, since its
    pool diverged at lr 0.05 without it (NaN losses from trial 72 of 200, measured)."""
    return 5.0 if data is digits14 else None


def shared_trainer(data: Any, seed: int = 0) -> sn.Trainer:
    return sn.Trainer(
        data=data, batch_size=64, optimizer="sgd", lr=0.05, momentum=0.9, seed=seed,
        eval_batch_size=500,
    )  # fmt: skip


def make_spaces() -> dict[str, Any]:
    return {
        "annotated_cnn": cnn_space(),
        "nasbench201_c8n1": spaces.get("nasbench201", C=8, N=1, in_channels=1),
    }


def sample(codec: sn.Codec, n: int, seed: int = 0) -> list[list[int]]:
    rng, found = random.Random(seed), {}
    while len(found) < min(n, codec.space_size):
        tokens = codec.random_tokens(rng)
        found[tuple(tokens)] = tokens
    return list(found.values())


def train_alone(space: Any, data: Any, tokens: list[int], seed: int) -> tuple[dict, float]:
    """Stand-alone accuracy of one architecture and its CPU seconds."""
    start = time.process_time()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = sn.materialize(space, tokens)
    metrics = StandAlone(data, seed)(model)
    return metrics, time.process_time() - start


def ground_truth(space: Any, data: Any, archs: list[list[int]]) -> dict[str, Any]:
    runs, seconds = {}, []
    for seed in (1, 2):
        accs = []
        for tokens in archs:
            metrics, cpu = train_alone(space, data, tokens, seed)
            accs.append(metrics["accuracy"])
            seconds.append(cpu)
        runs[seed] = accs
    return {
        "standalone": runs,
        "ceiling_tau": kendall_tau(runs[1], runs[2]),
        "standalone_cpu_s": statistics.mean(seconds),
    }


def shared_ranking(
    space: Any, data: Any, archs: list[list[int]], warm_trials: int, train_steps: int
) -> dict[str, Any]:
    shared = sn.WeightSharing(
        shared_trainer(data), train_steps=train_steps, grad_clip=clip_of(data)
    )
    start = time.process_time()
    result = sn.search(space, shared, algorithm="random", num_trials=warm_trials, seed=0,
                       tensorboard=False)  # fmt: skip
    warm_cpu = time.process_time() - start
    trials = result.completed
    out: dict[str, Any] = {
        "warm_trials": warm_trials,
        "train_steps": train_steps,
        "warm_cpu_s": warm_cpu,
        "search_trials_per_cpu_s": warm_trials / warm_cpu,
        "build_ms_median": statistics.median(t.metrics["build_ms"] for t in trials[10:]),
        "trial_ms_median": 1e3 * statistics.median(t.duration or 0.0 for t in trials[10:]),
        "pool": {"modules": shared.pool.num_modules, "parameters": shared.pool.num_parameters},
    }
    for mode in ("recalibrate", "batch_stats"):
        scorer = sn.WeightSharing(shared_trainer(data), train_steps=0, batch_norm=mode,
                                  pool=shared.pool)  # fmt: skip
        scorer.bind(space)
        start = time.process_time()
        rewards = [scorer(tokens)["reward"] for tokens in archs]
        cpu = time.process_time() - start
        out[mode] = {"rewards": rewards, "score_cpu_s": cpu / len(archs)}
    return out


def build_cost(space: Any, n: int = 10) -> dict[str, float]:
    """CPU ms of a child built from a full pool (meta build) vs a real build (allocated and
    initialised), without training."""
    codec = sn.encode(space)
    pool = sn.ParameterPool()
    rng = random.Random(3)
    archs = [codec.random_tokens(rng) for _ in range(n)]
    for tokens in archs:
        pool.build(codec, tokens)
    start = time.process_time()
    for tokens in archs:
        pool.build(codec, tokens)
    pool_ms = (time.process_time() - start) / n * 1e3
    start = time.process_time()
    for tokens in archs:
        codec.materialize(tokens)
    return {"pool_build_ms": pool_ms, "real_build_ms": (time.process_time() - start) / n * 1e3,
            "parameters": pool.num_parameters}  # fmt: skip


def overhead(space: Any, data: Any, pool_trials: int = 30) -> dict[str, float]:
    """Per-trial build cost from the pool (steady state) vs a real build and a train step."""
    shared = sn.WeightSharing(shared_trainer(data), train_steps=1, grad_clip=clip_of(data))
    codec = shared.bind(space)
    rng = random.Random(5)
    for _ in range(pool_trials):  # fill the pool
        shared(codec.random_tokens(rng))
    archs = [codec.random_tokens(rng) for _ in range(20)]
    start = time.process_time()
    built = [shared.pool.build(codec, t) for t in archs]
    pool_ms = (time.process_time() - start) / len(archs) * 1e3
    new = sum(len(b.new) for b in built)
    start = time.process_time()
    for t in archs:
        codec.materialize(t)
    real_ms = (time.process_time() - start) / len(archs) * 1e3
    step = sn.WeightSharing(
        shared_trainer(data), train_steps=20, pool=shared.pool, grad_clip=clip_of(data)
    )
    step.bind(space)
    timings = []
    for t in archs[:5]:
        start = time.process_time()
        step(t)
        timings.append((time.process_time() - start) * 1e3)
    # train_step_ms: CPU ms of one step, from whole trials of 20 steps (build and scoring
    # included, so an upper bound).
    return {"pool_build_ms": pool_ms, "real_build_ms": real_ms,
            "train_step_ms": statistics.median(timings) / 20,
            "new_modules_in_steady_state": new}  # fmt: skip


def flow(space: Any, data: Any, seed: int, shared_trials: int, k: int) -> dict[str, Any]:
    """The two-stage flow, then a stand-alone search with the same CPU time."""
    root = pathlib.Path(tempfile.mkdtemp(prefix="ws-bench-"))
    start = time.process_time()
    shared = sn.WeightSharing(shared_trainer(data, seed), train_steps=10, grad_clip=clip_of(data))
    first = sn.search(space, shared, algorithm="reinforce", num_trials=shared_trials,
                      seed=seed, run_dir=str(root / "shared"), tensorboard=False)  # fmt: skip
    finalists = [t.tokens for t in first.top(k, distinct=True)]
    retrain_start = time.process_time()
    second = sn.search(
        space, StandAlone(data, seed), algorithm=algorithms.get("fixed", tokens=finalists),
        num_trials=len(finalists), seed=seed, run_dir=str(root / "retrain"), tensorboard=False,
    )  # fmt: skip
    flow_cpu = time.process_time() - start
    retrain_cpu = time.process_time() - retrain_start
    pick = second.best
    # The stand-alone search gets the same CPU time: as many trials as the retraining
    # stage's cost per training allows.
    trials = max(1, round(flow_cpu / (retrain_cpu / len(finalists))))
    start = time.process_time()
    alone = sn.search(space, StandAlone(data, seed), algorithm="reinforce", num_trials=trials,
                      seed=seed, run_dir=str(root / "alone"), tensorboard=False)  # fmt: skip
    alone_cpu = time.process_time() - start
    return {
        "seed": seed,
        "flow_cpu_s": flow_cpu,
        "flow_pick": pick.tokens,
        "flow_test": pick.metrics["test_accuracy"],
        "flow_val": pick.metrics["accuracy"],
        "alone_cpu_s": alone_cpu,
        "alone_trials": trials,
        "alone_pick": alone.best.tokens,
        "alone_test": alone.best.metrics["test_accuracy"],
        "alone_val": alone.best.metrics["accuracy"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (small sizes)")
    parser.add_argument("--out", default="benchmarks/weight_sharing.json")
    parser.add_argument("--parts", default="overhead,ranking,flow")
    parser.add_argument("--spaces", default="annotated_cnn,nasbench201_c8n1")
    parser.add_argument("--seeds", type=int, default=5, help="seeds of the flow comparison")
    parser.add_argument("--shared-trials", type=int, default=None, help="flow stage 1 trials")
    parser.add_argument("--finalists", type=int, default=3, help="flow stage 2 retrainings")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    n_archs, warm = (6, 20) if args.quick else (30, 200)
    seeds, k = list(range(1 if args.quick else args.seeds)), 2 if args.quick else args.finalists
    shared_trials = {"annotated_cnn": 150, "nasbench201_c8n1": 80}
    if args.shared_trials is not None:
        shared_trials = dict.fromkeys(shared_trials, args.shared_trials)
    parts = set(args.parts.split(","))
    report: dict[str, Any] = {"quick": args.quick, "torch": torch.__version__}
    for name, space in make_spaces().items():
        if name not in args.spaces.split(","):
            continue
        print(f"== {name}", flush=True)
        entry: dict[str, Any] = report.setdefault(name, {})
        codec = sn.encode(space)
        if "overhead" in parts:
            entry["overhead"] = overhead(space, DATA[name])
            if name == "nasbench201_c8n1":  # and the benchmark's own size, C=16, N=5
                entry["overhead"]["full_size"] = build_cost(
                    spaces.get("nasbench201", in_channels=1)
                )
            print("overhead", json.dumps(entry["overhead"]), flush=True)
        if "ranking" in parts:
            archs = sample(codec, n_archs)
            truth = ground_truth(space, DATA[name], archs)
            ranking = shared_ranking(space, DATA[name], archs, warm, train_steps=10)
            a, b = truth["standalone"][1], truth["standalone"][2]
            for mode in ("recalibrate", "batch_stats"):
                rewards = ranking[mode]["rewards"]
                ranking[mode]["tau_vs_run1"] = kendall_tau(rewards, a)
                ranking[mode]["tau_vs_run2"] = kendall_tau(rewards, b)
                ranking[mode]["tau_vs_mean"] = kendall_tau(
                    rewards, [(x + y) / 2 for x, y in zip(a, b)]
                )
            entry["ranking"] = {"archs": archs, **truth, **ranking}
            print("ceiling", truth["ceiling_tau"], "standalone cpu s", truth["standalone_cpu_s"])
            for mode in ("recalibrate", "batch_stats"):
                r = ranking[mode]
                print(
                    mode, "tau", r["tau_vs_run1"], r["tau_vs_run2"], "score cpu s", r["score_cpu_s"]
                )
            print("search trials/cpu-s", ranking["search_trials_per_cpu_s"], flush=True)
        if "flow" in parts:
            entry["flow"] = []
            for seed in seeds:
                outcome = flow(
                    space, DATA[name], seed, 12 if args.quick else shared_trials[name], k
                )
                entry["flow"].append(outcome)
                print("flow", json.dumps(outcome), flush=True)
        pathlib.Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
