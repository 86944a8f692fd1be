"""Autograd graph panel cost per refresh: graph extraction (forward + walk + hooked backward) and
layered layout, median over repeats, for every built-in surface and a ~200-node formula.

The panel re-extracts on every refresh but re-lays-out only when the structure changes.
Run: python benchmarks/bench_graph.py [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.formula import compile_formula  # noqa: E402
from core.graph import build_graph, compute_layout  # noqa: E402
from core.surfaces import BUILTIN_SURFACES  # noqa: E402


def big_formula(terms: int = 24) -> str:
    """About 200 nodes: alternating sin and exp terms in x and y."""
    return " + ".join(f"{k / 10:.1f}*sin({1 + k / 10:.1f}*x - y**2)" if k % 2 else
                      f"{k / 10:.1f}*exp(-(x - {k / 10:.1f})**2*y)" for k in range(terms))


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def plain_backward_ms(fn: Callable, x: float, y: float, repeats: int) -> float:
    """The same forward + backward without the graph machinery: the baseline."""
    def step() -> None:
        xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        yt = torch.tensor(y, dtype=torch.float64, requires_grad=True)
        fn(xt, yt).backward()
    return median_ms(step, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cases = [(s.name, s, s.start) for s in BUILTIN_SURFACES]
    cases.append(("formula_200", compile_formula(big_formula()), (0.3, -0.2)))
    print(f"{'surface':<18} {'nodes':>5} {'edges':>5} {'extract ms':>10} {'layout ms':>10} "
          f"{'plain fwd+bwd ms':>16} {'ratio':>6}")
    for name, fn, (x, y) in cases:
        graph = build_graph(fn, x, y)
        extract = median_ms(lambda fn=fn, x=x, y=y: build_graph(fn, x, y), args.repeats)
        layout = median_ms(lambda graph=graph: compute_layout(graph), args.repeats)
        plain = plain_backward_ms(fn, x, y, args.repeats)
        print(f"{name:<18} {len(graph.nodes):>5} {len(graph.edges):>5} {extract:>10.2f} "
              f"{layout:>10.2f} {plain:>16.3f} {extract / plain:>6.1f}")


if __name__ == "__main__":
    main()
