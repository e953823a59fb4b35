"""A two-stage flow: search the main job's space with shared weights, retrain the finalists.

Stage 1 searches the annotated CNN of ``examples/mnist_search.py`` with ``reinforce``
over one pool of shared weights (ENAS-style): each trial builds the proposed child
from the pool, trains the pool for 20 minibatches through it and scores it on the
500 validation digits. Stage 2 retrains the best distinct architectures of stage 1
from scratch (stand-alone, the ``fixed`` algorithm) and reports the best one's
held-out test accuracy. Same space, same algorithm: only the evaluator changed.

Run (a few minutes on one CPU core)::

    python examples/weight_sharing_flow.py                     # runs/ws-flow
    python examples/weight_sharing_flow.py --trials 400 --finalists 5

Running it again continues both stages in ``--run-dir`` (after a crash too: the pool
and its optimizer state are saved with the run).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import torch

sys.path.append(str(pathlib.Path(__file__).resolve().parents[1]))  # For `examples`.

import symbolic_nas as sn
from examples.mnist_search import Evaluate, digits14, space
from symbolic_nas import algorithms


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=200, help="shared-weight trials (200)")
    parser.add_argument("--finalists", type=int, default=3, help="architectures to retrain (3)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of a retraining (2)")
    parser.add_argument("--run-dir", default="runs/ws-flow", help="run directory (runs/ws-flow)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    search_space = space()
    pool_trainer = sn.Trainer(
        data=digits14, batch_size=64, optimizer="sgd", lr=0.05, momentum=0.9, seed=args.seed
    )
    shared = sn.WeightSharing(pool_trainer, train_steps=20, eval_batches=1, grad_clip=5.0)
    result = sn.search(
        search_space, shared, algorithm="reinforce", num_trials=args.trials,
        run_dir=f"{args.run_dir}/shared", seed=args.seed, resume=True,
    )  # fmt: skip
    print(f"stage 1: {len(result.trials)} shared-weight trials, pool {shared.pool}")
    finalists = result.top(args.finalists, distinct=True)
    for trial in finalists:
        print(f"  finalist trial {trial.id}: shared-weight accuracy {trial.reward:.3f}")

    final = sn.search(
        search_space, Evaluate(epochs=args.epochs),
        algorithm=algorithms.get("fixed", tokens=[t.tokens for t in finalists]),
        num_trials=len(finalists), run_dir=f"{args.run_dir}/final", seed=args.seed, resume=True,
    )  # fmt: skip
    best = final.best
    if best is None:
        print("no finalist completed")
        return 1
    print(f"stage 2: {len(final.trials)} finalists retrained from scratch")
    for name, label in final.codec.labels(best.tokens).items():
        print(f"  {name}: {label}")
    print(f"validation accuracy {best.metrics['accuracy']:.3f}")
    print(f"held-out test accuracy {best.metrics['test_accuracy']:.3f}")
    # The same architecture with its shared weights, as a plain module (e.g. to fine-tune):
    model = shared.materialize(best.tokens)
    print(f"shared-weight model: {sum(p.numel() for p in model.parameters()):,} parameters")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
