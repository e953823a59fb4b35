"""Encoder micro-benchmark: token operations against PyGlove's DNA path, same run.

Space: 6 layers, each a conditional choice between a convolution (kernel, filters)
and a pooling layer (size), plus an activation: 30 decisions in all, ~21 active.

Run: python benchmarks/encoder.py [--repeats N]
Goal (issue #2): operations that stay on tokens <= 50 µs on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

import pyglove as pg
import torch
from torch import nn

import symbolic_nas as sn


@sn.symbolize
class Conv(nn.Module):
    def __init__(self, cin: int, filters: int, kernel: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, filters, kernel, padding=kernel // 2)
        self.proj = nn.Conv2d(filters, cin, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.conv(x))


@sn.symbolize
class Pool(nn.Module):
    def __init__(self, size: int):
        super().__init__()
        self.pool = nn.MaxPool2d(size, stride=1, padding=size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)


@sn.symbolize
class Layer(nn.Module):
    def __init__(self, op: nn.Module, act: str):
        super().__init__()
        self.op = op
        self.act = nn.ReLU() if act == "relu" else nn.Tanh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.op(x))


@sn.symbolize
class Model(nn.Module):
    def __init__(self, layers: list):
        super().__init__()
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def make_space(num_layers: int = 6):
    layers = [
        Layer(
            sn.oneof(
                [
                    Conv(8, sn.oneof([8, 16, 24, 32]), sn.oneof([1, 3, 5, 7])),
                    Pool(sn.oneof([3, 5])),
                ]
            ),
            sn.oneof(["relu", "tanh"]),
        )
        for _ in range(num_layers)
    ]
    return Model(layers)


def per_call_us(fn: Callable[[int], object], repeats: int) -> float:
    fn(0)  # warm up
    start = time.perf_counter()
    for i in range(repeats):
        fn(i)
    return (time.perf_counter() - start) / repeats * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=2000, help="calls per token operation")
    parser.add_argument("--pg-repeats", type=int, default=30, help="calls per PyGlove operation")
    args = parser.parse_args()
    torch.set_num_threads(1)

    space = make_space()
    codec = sn.encode(space)
    rng = random.Random(0)
    samples = [codec.random_tokens(rng) for _ in range(256)]
    dnas = [codec.from_tokens(t) for t in samples[:64]]
    active = sum(len(t) for t in samples) / len(samples)
    pick = lambda i: samples[i % len(samples)]  # noqa: E731

    rows = [
        ("random_tokens", per_call_us(lambda i: codec.random_tokens(rng), args.repeats)),
        ("validate tokens", per_call_us(lambda i: codec.validate(pick(i)), args.repeats)),
        ("tokens -> decision values", per_call_us(lambda i: codec.decode(pick(i)), args.repeats)),
        ("to_tokens(dna)", per_call_us(lambda i: codec.to_tokens(dnas[i % 64]), args.pg_repeats)),
        ("from_tokens(tokens)", per_call_us(lambda i: codec.from_tokens(pick(i)), args.pg_repeats)),
        ("materialize(tokens)", per_call_us(lambda i: codec.materialize(pick(i)), args.pg_repeats)),
    ]
    spec = pg.dna_spec(space)
    pg_rng = random.Random(0)
    pg_random = per_call_us(lambda i: pg.random_dna(spec, pg_rng), args.pg_repeats)
    pg_both = per_call_us(
        lambda i: pg.materialize(space, pg.random_dna(spec, pg_rng)), args.pg_repeats
    )

    print(f"space: {codec.num_decisions} decisions, {active:.1f} active on average")
    print(
        f"baseline pg.random_dna: {pg_random:,.0f} µs; pg.random_dna + pg.materialize: "
        f"{pg_both:,.0f} µs"
    )
    print(f"{'operation':<28}{'µs/call':>12}{'vs random_dna':>16}{'vs dna+mat.':>14}  goal")
    for name, us in rows:
        on_tokens = name in ("random_tokens", "validate tokens", "tokens -> decision values")
        goal = ("<= 50 µs " + ("met" if us <= 50 else "MISSED")) if on_tokens else ""
        print(f"{name:<28}{us:>12,.1f}{pg_random / us:>15.0f}x{pg_both / us:>13.1f}x  {goal}")


if __name__ == "__main__":
    main()
