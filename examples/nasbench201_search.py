"""Search NAS-Bench-201 with any algorithm: a tabular benchmark, microseconds per trial.

The evaluator asks for tokens (six op codes), so no network is ever built: the
search selects by the 12-epoch validation accuracy and we report the 200-epoch
CIFAR-10 test accuracy of its pick, the benchmark's protocol.

Run: python examples/nasbench201_search.py [--algorithm reinforce] [--trials 100] [--seeds 3]
"""

from __future__ import annotations

import argparse
import statistics

import symbolic_nas as sn
from symbolic_nas.nasbench import NasBench201


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithm", default="reinforce", help="a registered algorithm name")
    parser.add_argument("--trials", type=int, default=100, help="architectures per search")
    parser.add_argument("--seeds", type=int, default=3, help="independent searches")
    args = parser.parse_args()

    bench = NasBench201()  # fitness "c10valid_val_12", report "c10_test_200"
    reports = []
    for seed in range(args.seeds):
        result = sn.search(
            bench.space,
            bench.evaluate,
            algorithm=args.algorithm,
            num_trials=args.trials,
            seed=seed,
            progress=False,
        )
        best = result.best
        reports.append(bench.report(best))  # 200-epoch CIFAR-10 test accuracy of the pick
        print(
            f"seed {seed}: best fitness {best.reward:.2f} -> test accuracy {reports[-1]:.2f} "
            f"(index {bench.index(best)}) {bench.arch_str(best)}"
        )
    spread = statistics.stdev(reports) if len(reports) > 1 else 0.0
    optimum = float(bench.table.column(bench.report_column).max())
    print(
        f"{args.algorithm}, {args.trials} trials, {args.seeds} seeds: test accuracy "
        f"{statistics.mean(reports):.2f} +- {spread:.2f} (best cell: {optimum:.2f})"
    )


if __name__ == "__main__":
    main()
