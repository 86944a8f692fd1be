"""Formula figures: how long the longest and deepest legal formulas take to compile, to become a
surface (compile + the search for a default start), and to evaluate, against baselines measured
in the same process.

    .venv/bin/python benchmarks/bench_formula.py [--repeats N] [--timing-runs N]

For each worst case the limits allow (MAX_TOKENS tokens, MAX_DEPTH levels):
  compile      core.formula.compile_formula (tokenize, parse, build the closures); the baseline is
               Python's own compile() of the same text (C parser and bytecode compiler)
  surface      core.surfaces.surface_from_formula: compile, one batched forward/backward on the
               25 x 25 start-search grid, the default start; the baseline ("point by point") is
               the search this replaced, one scalar forward/backward a grid point, nearest first
  fwd+bwd      one forward and backward at a point; the baseline is the same expression written
               as plain torch code (Python's eval of the text over torch functions, here only, on
               the benchmark's own strings)
  grid 101     Surface.grid(101, 101), what the surface view draws on a formula change
Medians of interleaved repeats (engine, baseline, engine, ...). A frame is 16.7 ms; the target
for anything on the GUI thread when a formula is typed is well under 30 ms.

Then the no_grad read-out's stability: core.analysis.grid_timing run several times on the same
surface, against the measurement it replaced (the best of 5 back-to-back evaluations of one mode,
then of the other), in the same process: how far the reported time ratio moves from run to run.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from core.analysis import grid_timing  # noqa: E402
from core.errors import PlaygroundError  # noqa: E402
from core.formula import CONSTANTS, FUNCTIONS, compile_formula  # noqa: E402
from core.surfaces import (  # noqa: E402
    START_SEARCH_POINTS,
    Surface,
    get_surface,
    surface_from_formula,
)

F64 = torch.float64
DEFAULT_START = (-3.0 + 0.8 * 6.0, -3.0 + 0.8 * 6.0)  # surface_from_formula's, on (-3, 3)^2

CASES: dict[str, str] = {
    "sum x+y+y... (999 chars)": "x" + "+y" * 499,
    "product x*x*x... (999)": "x" + "*x" * 499,
    "division x/y/y... (999)": "x" + "/y" * 499,
    "sin(sin(...)) 59 deep": "sin(" * 59 + "x" + ")" * 59,
    "sin(1+2*sin(... 59 deep": "sin(1+2*" * 59 + "x" + ")" * 59,
    "70 x sin(x)*cos(y)": "+".join(["sin(x)*cos(y)"] * 70),
    "long, NaN at default start": "log(1.5 - x)" + "+y" * 493,
    "long, NaN gradient everywhere": "sqrt(x - x)" + "+x" * 494,
}


def timed_ms(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def interleaved(engine: Callable[[], object], baseline: Callable[[], object] | None,
                repeats: int) -> tuple[float, float | None]:
    """Medians (ms) of engine and baseline, measured alternately so that load hits both alike."""
    engine()
    if baseline is not None:
        baseline()
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(repeats):
        ours.append(timed_ms(engine))
        if baseline is not None:
            theirs.append(timed_ms(baseline))
    return statistics.median(ours), statistics.median(theirs) if theirs else None


def surface_or_error(text: str) -> Callable[[], object]:
    def build() -> object:
        try:
            return surface_from_formula(text)
        except PlaygroundError as e:
            return e
    return build


def point_by_point_search(text: str) -> Callable[[], object]:
    """The start search as it was: nearest grid point first, one scalar forward/backward each."""
    formula = compile_formula(text)
    surface = Surface("bench", "bench", formula, (-3.0, 3.0), (-3.0, 3.0), DEFAULT_START)
    axis = torch.linspace(-3.0, 3.0, START_SEARCH_POINTS, dtype=F64).tolist()
    x0, y0 = DEFAULT_START
    points = sorted(((x, y) for y in axis for x in axis),
                    key=lambda p: ((p[0] - x0) / 6) ** 2 + ((p[1] - y0) / 6) ** 2)

    def search() -> object:
        for p in [DEFAULT_START, *points]:
            if all(math.isfinite(v) for v in surface.value_and_grad(*p)):
                return p
        return None
    return search


def plain_torch(text: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    namespace: dict[str, object] = {name: fn for name, (_, fn) in FUNCTIONS.items()}
    namespace.update(CONSTANTS)
    code = compile(text.replace("^", "**"), "<bench>", "eval")
    return lambda x, y: eval(code, {"__builtins__": {}}, {**namespace, "x": x, "y": y})


def forward_backward(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
                     ) -> Callable[[], object]:
    def run() -> object:
        x = torch.tensor(0.9, dtype=F64, requires_grad=True)
        y = torch.tensor(1.1, dtype=F64, requires_grad=True)
        out = fn(x, y)
        out.backward()
        return out
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--timing-runs", type=int, default=5,
                        help="runs of the no_grad read-out per surface (0: skip)")
    args = parser.parse_args()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    r = args.repeats
    print(f"{'case':<31}{'compile ms':>11}{'py ratio':>9}{'surface ms':>11}"
          f"{'pt-by-pt ms':>12}{'speed-up':>9}{'fwd+bwd ms':>11}{'ratio':>7}{'grid101 ms':>11}")
    worst_gui = 0.0
    for name, text in CASES.items():
        compile_ms, python_ms = interleaved(partial(compile_formula, text),
                                            partial(compile, text.replace("^", "**"), "<f>",
                                                    "eval"), r)
        build = surface_or_error(text)
        surface = build()
        needs_search = not isinstance(surface, Surface) or surface.start != DEFAULT_START
        # The old search only did work where the default start was unusable: time it there.
        surface_ms, old_ms = interleaved(build, point_by_point_search(text) if needs_search
                                         else None, max(3, r // 5) if needs_search else r)
        formula = compile_formula(text)
        fwd_ms, plain_ms = interleaved(forward_backward(formula),
                                       forward_backward(plain_torch(text)), r)
        if isinstance(surface, Surface):
            grid_ms, _ = interleaved(partial(surface.grid, nx=101, ny=101), None, r)
        else:
            grid_ms = 0.0
        worst_gui = max(worst_gui, surface_ms + grid_ms)
        speed_up = f"{old_ms / surface_ms:>8.0f}x" if old_ms else f"{'-':>9}"
        old = f"{old_ms:>12.1f}" if old_ms else f"{'-':>12}"
        grid = f"{grid_ms:>11.2f}" if grid_ms else f"{'refused':>11}"
        assert python_ms is not None and plain_ms is not None
        print(f"{name:<31}{compile_ms:>11.2f}{compile_ms / python_ms:>8.1f}x{surface_ms:>11.2f}"
              f"{old}{speed_up}{fwd_ms:>11.3f}{fwd_ms / plain_ms:>6.2f}x{grid}")
    print(f"\nlongest formula change (surface + grid 101): {worst_gui:.1f} ms "
          f"= {worst_gui / 16.7:.2f} frames")
    torch.set_num_threads(threads)  # the read-out sets its own; the old one used the default
    if args.timing_runs:
        timing_stability(args.timing_runs)


def sequential_best_of_5_ratio(surface: Surface, n: int) -> float:
    """The old read-out: best of 5 evaluations without tracking, then best of 5 with it (on
    torch's default threads, as it was)."""
    xs = torch.linspace(*surface.x_range, n, dtype=F64)
    ys = torch.linspace(*surface.y_range, n, dtype=F64)

    def best(track: bool) -> float:
        def once() -> object:
            x, y = xs.detach().requires_grad_(track), ys.detach().requires_grad_(track)
            with torch.set_grad_enabled(track):
                return surface(x.unsqueeze(0), y.unsqueeze(1))
        once()
        return min(timed_ms(once) for _ in range(5))
    no_grad = best(False)
    return best(True) / no_grad


def timing_stability(runs: int) -> None:
    print(f"\nno_grad read-out, {runs} runs each, 300 x 300 grid: time ratio (tracking / no_grad)")
    print(f"{'surface':<18}{'new: min':>9}{'median':>8}{'max':>7}{'  old: min':>10}{'median':>8}"
          f"{'max':>7}{'new s/run':>10}")
    for name in ("rosenbrock", "goldstein_price", "rastrigin"):
        surface = get_surface(name)
        new: list[float] = []
        old: list[float] = []
        seconds: list[float] = []
        for _ in range(runs):
            start = time.perf_counter()
            new.append(grid_timing(surface, 300)["time_ratio"])
            seconds.append(time.perf_counter() - start)
            old.append(sequential_best_of_5_ratio(surface, 300))
        print(f"{name:<18}{min(new):>9.2f}{statistics.median(new):>8.2f}{max(new):>7.2f}"
              f"{min(old):>10.2f}{statistics.median(old):>8.2f}{max(old):>7.2f}"
              f"{statistics.median(seconds):>10.2f}")
    t = grid_timing(get_surface("rosenbrock"), 300)
    print(f"rosenbrock conclusion: {t['conclusion']}")


if __name__ == "__main__":
    main()
