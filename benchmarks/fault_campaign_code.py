"""The code of the fault campaign's drivers (``benchmarks/fault_campaign.py``).

Run as a script, it is one driver: ``python fault_campaign_code.py KIND RUN_DIR TRIALS
EXECUTOR WORKERS`` resumes (or starts) a random search in ``RUN_DIR``: ``KIND`` is
``reward`` (4^6 architectures, an evaluator that sleeps ``CAMPAIGN_SLEEP`` seconds,
default 0.02) or ``escapes`` (evaluators that raise what should never escape). The
CLI cases import its spaces and evaluator as ``fault_campaign_code:...``.
"""

from __future__ import annotations

import os
import sys
import time

import symbolic_nas as sn

HERE = os.path.dirname(os.path.abspath(__file__))
ESCAPES = ("ok", "bad_str", "bad_repr", "exit", "interrupt")


def wide_space():
    return {f"d{i}": sn.oneof([0, 1, 2, 3]) for i in range(6)}


@sn.evaluator(input="tokens")
def slow_reward(tokens):
    time.sleep(float(os.environ.get("CAMPAIGN_SLEEP", "0.02")))
    return float(sum((i + 1) * t for i, t in enumerate(tokens)))


def ranged_space(high: int = 3):
    return {"n": sn.intv(1, high)}


def escape_space():
    return {"how": sn.oneof(list(ESCAPES)), "x": sn.intv(0, 9)}


class BadStr(Exception):
    def __str__(self):
        raise RuntimeError("no text")


class BadRepr(BadStr):
    def __repr__(self):
        raise RuntimeError("no repr")


def escaping(arch):
    how = arch["how"]
    if how == "bad_str":
        raise BadStr(arch["x"])
    if how == "bad_repr":
        raise BadRepr(arch["x"])
    if how == "exit":
        sys.exit(3)
    if how == "interrupt":
        raise KeyboardInterrupt
    return arch["x"] / 10


if __name__ == "__main__":
    kind, run_dir, num_trials, executor, workers = sys.argv[1:6]
    if executor == "ray":
        import ray

        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": HERE}},
        )
    escapes = kind == "escapes"
    space, evaluate = (escape_space(), escaping) if escapes else (wide_space(), slow_reward)
    sn.search(
        space,
        evaluate,
        algorithm="random",
        num_trials=int(num_trials),
        executor=executor,
        workers=int(workers),
        run_dir=run_dir,
        resume=True,
        seed=0,
        max_consecutive_failures=None,
        tensorboard=False,
        progress=False,
        checkpoint_interval=0.1,
    )
