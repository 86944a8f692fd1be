"""Model-mode figures: the plain PyTorch loop per preset, the landscape grid, sharpness.

    .venv/bin/python benchmarks/bench_model.py            # everything (about a minute)
    .venv/bin/python benchmarks/bench_model.py --quick    # fewer steps and repeats

(a) Steps per second of the loop every PyTorch tutorial writes (zero_grad, loss_fn(model(X), y),
    backward, step), full batch, for each model preset with Adam and SGD, float64. This is the
    reference the model-mode engine is held to (ratio >= 0.85 in the same process); the
    engine's own figures (Run.step and the workspace controller's tick against this loop, per
    preset, full batch and minibatches) are benchmarks/bench_model_engine.py.
(b) The landscape: a 101 x 101 slice (filter-normalised random directions) of the small MLP on
    200 points, batched with vmap(functional_call) in chunks, against evaluating the same grid
    point by point with a plain no_grad forward (timed on a sample, scaled). Aim: well under a
    second. Also the exact 101 x 101 surface of linear regression.
(c) Sharpness of the small MLP on 200 points: Lanczos and power iteration, their Hessian-vector
    products, and one HVP against one plain forward + backward.
(d) Edge of stability (Cohen et al., 2021), as a check that sharpness measures what the view
    will draw: full-batch gradient descent (plain loop) on an MLP, sharpness every 300 steps
    against 2 / lr; it rises to 2 / lr and hovers there. Skipped with --quick.
Repeats are interleaved and the median is printed (the machine is shared: medians, not bests).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from core.curvature import HessianOperator, sharpness, top_eigenpairs  # noqa: E402
from core.landscape import exact_surface, random_directions, slice_surface  # noqa: E402
from core.problems.data import (  # noqa: E402
    default_loss, make_dataset, make_loss, shape_targets,
)
from core.problems.model import PRESETS, build_model, parameters_vector  # noqa: E402

PRESET_DATA = {"linear-regression": "line", "logistic-regression": "moons",
               "small-mlp": "moons", "deep-mlp": "moons"}


def problem(preset: str, n: int = 200):
    """(model, loss_fn, X, y) for a preset on its usual 200-point dataset, seed 0."""
    data = make_dataset(PRESET_DATA[preset], n=n, seed=0)
    loss_name = default_loss(data.task)
    model = build_model(PRESETS[preset].text, data.n_features, seed=0)
    return model, make_loss(loss_name, data.task), data.X, shape_targets(data.y, loss_name)


def plain_loop_rate(preset: str, optimizer_name: str, steps: int) -> float:
    """Steps per second of the plain loop, full batch."""
    model, loss_fn, X, y = problem(preset)
    optimizer = (torch.optim.Adam(model.parameters(), lr=0.01) if optimizer_name == "Adam"
                 else torch.optim.SGD(model.parameters(), lr=0.1))
    for _ in range(10):  # warm up allocators and the optimizer's state
        optimizer.zero_grad()
        loss_fn(model(X), y).backward()
        optimizer.step()
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model(X), y)
        loss.backward()
        optimizer.step()
    return steps / (time.perf_counter() - start)


def bench_steps(steps: int, repeats: int) -> None:
    print("(a) plain PyTorch loop, full batch, 200 points, float64 (steps/s, median)")
    for preset in PRESETS:
        model, *_ = problem(preset)
        count = sum(p.numel() for p in model.parameters())
        for name in ("Adam", "SGD"):
            rates = [plain_loop_rate(preset, name, steps) for _ in range(repeats)]
            print(f"    {preset:20s} {count:5d} params  {name:4s}  "
                  f"{statistics.median(rates):8.0f} steps/s")


def bench_landscape(repeats: int, grid: int = 101) -> None:
    model, loss_fn, X, y = problem("small-mlp")
    directions = random_directions(model, seed=0)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        slice_surface(model, loss_fn, X, y, directions, grid=grid)
        times.append(time.perf_counter() - start)
    batched = statistics.median(times)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        slice_surface(model, loss_fn, X, y, directions, grid=grid, dtype=torch.float32)
        times.append(time.perf_counter() - start)
    single = statistics.median(times)
    # the same points one plain forward at a time (a sample, scaled to the grid)
    sample = 300
    theta = parameters_vector(model)
    probe = build_model(PRESETS["small-mlp"].text, 2, seed=0).eval()
    start = time.perf_counter()
    with torch.no_grad():
        for k in range(sample):
            a, b = (k % grid) / grid - 0.5, (k // grid) / grid - 0.5
            torch.nn.utils.vector_to_parameters(theta + a * directions.d1 + b * directions.d2,
                                                probe.parameters())
            loss_fn(probe(X), y)
    pointwise = (time.perf_counter() - start) / sample * grid * grid
    print(f"(b) slice {grid}x{grid}, small MLP, 200 points: {batched * 1e3:.0f} ms batched "
          f"(median of {repeats}); point by point ~{pointwise * 1e3:.0f} ms; "
          f"batched is {pointwise / batched:.1f}x faster; in float32 {single * 1e3:.0f} ms "
          f"({batched / single:.1f}x faster than float64)")
    lin, lin_loss, lin_X, lin_y = problem("linear-regression")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        exact_surface(lin, lin_loss, lin_X, lin_y, grid=grid)
        times.append(time.perf_counter() - start)
    print(f"    exact surface {grid}x{grid}, linear regression, 200 points: "
          f"{statistics.median(times) * 1e3:.0f} ms")


def bench_sharpness(repeats: int) -> None:
    model, loss_fn, X, y = problem("small-mlp")
    results = {}
    for method, tol in (("lanczos", 1e-6), ("power", 1e-6)):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            pairs = top_eigenpairs(model, loss_fn, X, y, 1, method=method, tol=tol,
                                   max_iter=1000)
            times.append(time.perf_counter() - start)
        results[method] = pairs
        print(f"(c) sharpness by {method:7s} (tol {tol:g}): "
              f"{statistics.median(times) * 1e3:6.1f} ms, {pairs.products:3d} HVPs, "
              f"value {pairs.values[0]:.6f}, converged {pairs.converged}")
    operator = HessianOperator(model, loss_fn, X, y)
    v = torch.randn(operator.size, dtype=torch.float64)
    count = 200
    start = time.perf_counter()
    for _ in range(count):
        operator(v)
    hvp = (time.perf_counter() - start) / count
    start = time.perf_counter()
    for _ in range(count):
        model.zero_grad()
        loss_fn(model(X), y).backward()
    plain = (time.perf_counter() - start) / count
    print(f"    one HVP {hvp * 1e6:.0f} us = {hvp / plain:.2f}x one plain forward+backward "
          f"({plain * 1e6:.0f} us)")


def bench_edge_of_stability(steps: int = 3000, every: int = 300) -> None:
    data = make_dataset("sine", n=100, seed=0)
    X, y = data.X, data.y[:, None]
    loss_fn = nn.MSELoss()
    print("(d) edge of stability: GD on Linear(1, 32), Tanh(), Linear(32, 32), Tanh(), "
          "Linear(32, 1), sine, 100 points")
    for lr in (0.05, 0.2):
        model = build_model("Linear(1, 32), Tanh(), Linear(32, 32), Tanh(), Linear(32, 1)", 1,
                            seed=0)
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        seen = []
        for step in range(steps + 1):
            if step % every == 0:
                seen.append(f"{sharpness(model, loss_fn, X, y):.1f}")
            optimizer.zero_grad()
            loss_fn(model(X), y).backward()
            optimizer.step()
        print(f"    lr {lr}: 2/lr = {2 / lr:.0f}; sharpness every {every} steps: "
              f"{' '.join(seen)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: small tensors, threads add noise)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    steps, repeats = (300, 3) if args.quick else (1000, 5)
    bench_steps(steps, repeats)
    bench_landscape(3 if args.quick else 5)
    bench_sharpness(3 if args.quick else 5)
    if not args.quick:
        bench_edge_of_stability()


if __name__ == "__main__":
    main()
