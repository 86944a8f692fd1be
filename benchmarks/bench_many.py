"""Many runs beyond the basins (core/many.py, core/lr_finder.py): ratios against plain torch loops
written as a PyTorch user would, all in the same process.

    .venv/bin/python benchmarks/bench_many.py             # about two minutes on a quiet machine
    .venv/bin/python benchmarks/bench_many.py --quick     # smaller counts
    .venv/bin/python benchmarks/bench_many.py --compile   # also torch.compile (about a minute
                                                          # of compiling before it measures)

(a) A 64 x 64 trainability map (SGD momentum x lr, 100 steps, the ill-conditioned quadratic)
    end to end: core.many.trainability_map (one param group per cell in one batch), the
    Trainability tab from Compute to the picture (offscreen Qt), and the plain loop over the
    cells (two scalar leaves and an SGD per cell); and what building the batch's optimizers cost
    in one optimizer against GROUPS_PER_OPTIMIZER chunks (add_param_group is O(n) per group).
(b) The faster paths for that map's batch: foreach=True against torch's default, float32
    against float64 (results change: the batch's default stays float64, exact as a Run).
(c) torch.compile of the surface's loss (forward and backward of a 4096-element batch), with
    its compile time, and whether it gives the same numbers (--compile only).
(d) Model mode: an lr sweep of the small MLP on moons (each cell a core.run.Run, exact as
    `main.py train`) and the lr range test, against the plain loop (deepcopy of the model,
    torch.optim, loss_fn(model(X), y)) of the same steps.
(e) The basins' batch on one torch thread and in float32: one Adam step of a 65536-start batch
    (core.batch.BatchRun) and of the plain batched loop (x and y leaves of 65536, torch.optim.Adam,
    surface(x, y).sum().backward()) with one and with two threads; and the 256 x 256 Himmelblau
    map of 500 Adam steps end to end (core.many.basins) in float64 and float32, against the
    plain batched loop of the same steps in the same dtype.
foreach=True, float32 and more for the basins' 256 x 256 batch: benchmarks/bench_batch.py.
    .venv/bin/python benchmarks/bench_many.py --only e     # just (e), about a minute
Repeats are interleaved and the median is reported; the machine is shared, so read the ratios.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import core.batch as batch_module  # noqa: E402
from bench_batch import _timed, median_of  # noqa: E402
from core.batch import BatchRun  # noqa: E402
from core.lr_finder import range_test  # noqa: E402
from core.many import basins, linear_spaced, log_spaced, lr_sweep, trainability_map  # noqa: E402
from core.model_session import ModelSession  # noqa: E402
from core.surfaces import get_surface  # noqa: E402

START = (-2.5, 2.0)


def plain_map(surface, lrs: np.ndarray, momenta: np.ndarray, steps: int) -> float:
    """Seconds for the user's loop: one SGD on two scalar leaves per cell, cell after cell."""
    t0 = time.perf_counter()
    for m in momenta:
        for lr in lrs:
            x = torch.tensor(START[0], dtype=torch.float64, requires_grad=True)
            y = torch.tensor(START[1], dtype=torch.float64, requires_grad=True)
            opt = torch.optim.SGD([x, y], lr=float(lr), momentum=float(m))
            for _ in range(steps):
                opt.zero_grad()
                surface(x, y).backward()
                opt.step()
    return time.perf_counter() - t0


def build_seconds(surface, groups: list, per_optimizer: int) -> float:
    saved = batch_module.GROUPS_PER_OPTIMIZER
    batch_module.GROUPS_PER_OPTIMIZER = per_optimizer
    try:
        return _timed(lambda: BatchRun(surface, "SGD", groups))
    finally:
        batch_module.GROUPS_PER_OPTIMIZER = saved


def groups_step(surface, groups: list, steps: int, **kwargs) -> float:
    batch = BatchRun(surface, "SGD", groups, **kwargs)
    batch.step(2)
    t0 = time.perf_counter()
    batch.step(steps)
    return (time.perf_counter() - t0) / steps


def map_tab_seconds(side: int, steps: int) -> float:
    """The Trainability tab on one SGD run, offscreen: Compute to the map drawn, empty cache."""
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from core.session import Session
    from gui.controller import Controller
    from gui.many.trainability_view import TrainabilityView

    app = QApplication.instance() or QApplication([])
    session = Session(get_surface("rotated_quadratic"), START)
    session.add_run("SGD", {"lr": 0.01, "momentum": 0.9})
    view = TrainabilityView(Controller(session))
    view.resize(900, 600)
    view.show()
    view.grid_spin.setValue(side)
    view.steps_spin.setValue(steps)
    view.lr_low_edit.setText("1e-3")
    view.lr_high_edit.setText("1")
    shown: list = []
    view.sigComputed.connect(shown.append)
    t0 = time.perf_counter()
    view.compute()
    while not shown:
        app.processEvents()
        time.sleep(0.001)
    app.processEvents()
    elapsed = time.perf_counter() - t0
    view.close()
    return elapsed


def compiled_loss(surface, repeats: int) -> None:
    n = 4096
    x = torch.linspace(-2, 2, n, dtype=torch.float64, requires_grad=True)
    y = torch.linspace(-1, 3, n, dtype=torch.float64, requires_grad=True)

    def eager() -> tuple[torch.Tensor, torch.Tensor]:
        x.grad = y.grad = None
        surface(x, y).sum().backward()
        return x.grad.clone(), y.grad.clone()  # type: ignore[union-attr]

    compiled_fn = torch.compile(lambda a, b: surface(a, b).sum())

    def compiled() -> tuple[torch.Tensor, torch.Tensor]:
        x.grad = y.grad = None
        compiled_fn(x, y).backward()
        return x.grad.clone(), y.grad.clone()  # type: ignore[union-attr]

    seconds = _timed(compiled)
    same = all(torch.equal(a, b) for a, b in zip(eager(), compiled()))
    loops = 200
    t = median_of(repeats, {
        "eager": lambda: _timed(lambda: [eager() for _ in range(loops)]) / loops,
        "compiled": lambda: _timed(lambda: [compiled() for _ in range(loops)]) / loops})
    print(f"  compile {seconds:.1f} s; forward+backward of {n}: eager {t['eager'] * 1e6:.0f} us, "
          f"compiled {t['compiled'] * 1e6:.0f} us (/ eager {t['compiled'] / t['eager']:.2f}); "
          f"same numbers: {same}")


def plain_basins_loop(surface, side: int, steps: int, dtype: torch.dtype) -> float:
    """Seconds for the user's batched loop over a side x side grid: two leaves, one Adam."""
    xs = torch.linspace(*surface.x_range, side, dtype=dtype)
    ys = torch.linspace(*surface.y_range, side, dtype=dtype)
    t0 = time.perf_counter()
    x = xs.repeat(side).requires_grad_(True)
    y = ys.repeat_interleave(side).requires_grad_(True)
    opt = torch.optim.Adam([x, y], lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        surface(x, y).sum().backward()
        opt.step()
    return time.perf_counter() - t0


def batch_step_seconds(surface, threads: int, steps: int, plain: bool) -> float:
    """One Adam step of a 65536-start batch on `threads` torch threads (BatchRun, or the plain
    batched loop)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        if plain:
            return plain_basins_loop(surface, 256, steps, torch.float64) / steps
        starts = np.column_stack([np.tile(np.linspace(-5, 5, 256), 256),
                                  np.repeat(np.linspace(-5, 5, 256), 256)])
        batch = BatchRun(surface, "Adam", [({"lr": 0.05}, starts)])
        batch.step(1)
        t0 = time.perf_counter()
        batch.step(steps)
        return (time.perf_counter() - t0) / steps
    finally:
        torch.set_num_threads(saved)


def section_e(quick: bool, repeats: int) -> None:
    import os

    himmelblau = get_surface("himmelblau")
    few = 10 if quick else 30
    print(f"\n(e) the basins' batch: threads and float32 (load average "
          f"{os.getloadavg()[0]:.2f} at the start)")
    t = median_of(repeats + 1, {
        "batch 1": lambda: batch_step_seconds(himmelblau, 1, few, False),
        "batch 2": lambda: batch_step_seconds(himmelblau, 2, few, False),
        "plain 1": lambda: batch_step_seconds(himmelblau, 1, few, True),
        "plain 2": lambda: batch_step_seconds(himmelblau, 2, few, True)})
    print(f"  one Adam step of 65536 starts: BatchRun {t['batch 1'] * 1e3:.1f} ms on 1 thread, "
          f"{t['batch 2'] * 1e3:.1f} ms on 2 (2 / 1: {t['batch 2'] / t['batch 1']:.2f}); the "
          f"plain loop {t['plain 1'] * 1e3:.1f} ms on 1, {t['plain 2'] * 1e3:.1f} ms on 2 "
          f"(2 / 1: {t['plain 2'] / t['plain 1']:.2f}); BatchRun / plain on 1 thread "
          f"{t['batch 1'] / t['plain 1']:.2f}")
    side, steps = (128, 500) if quick else (256, 500)
    torch.set_num_threads(1)
    t = median_of(repeats, {
        "basins64": lambda: _timed(lambda: basins(himmelblau, "Adam(lr=0.05)", side, steps)),
        "basins32": lambda: _timed(lambda: basins(himmelblau, "Adam(lr=0.05)", side, steps,
                                                  dtype="float32")),
        "plain64": lambda: plain_basins_loop(himmelblau, side, steps, torch.float64),
        "plain32": lambda: plain_basins_loop(himmelblau, side, steps, torch.float32)})
    exact = basins(himmelblau, "Adam(lr=0.05)", side, steps)
    fast = basins(himmelblau, "Adam(lr=0.05)", side, steps, dtype="float32")
    same = float(np.mean(exact.minimum == fast.minimum))
    print(f"  {side} x {side} Himmelblau map, {steps} Adam steps, 1 thread: core.many.basins "
          f"float64 {t['basins64']:.2f} s, float32 {t['basins32']:.2f} s (32 / 64: "
          f"{t['basins32'] / t['basins64']:.2f}); the plain batched loop float64 "
          f"{t['plain64']:.2f} s, float32 {t['plain32']:.2f} s (32 / 64: "
          f"{t['plain32'] / t['plain64']:.2f})")
    print(f"  basins / plain: float64 {t['basins64'] / t['plain64']:.2f}, float32 "
          f"{t['basins32'] / t['plain32']:.2f}; float32 cells at float64's minimum: {same:.2%}"
          f" (load average {os.getloadavg()[0]:.2f} at the end)")


def plain_model_loop(built, lrs: np.ndarray, steps: int) -> float:
    """Seconds for the user's loop: a copy of the model and an SGD per lr, full batch."""
    problem = built.problem
    t0 = time.perf_counter()
    for lr in lrs:
        model = copy.deepcopy(built.model)
        opt = torch.optim.SGD(model.parameters(), lr=float(lr))
        for _ in range(steps):
            opt.zero_grad()
            problem.loss_fn(model(problem.X), problem.y).backward()
            opt.step()
    return time.perf_counter() - t0


def plain_range_test(built, steps: int) -> float:
    problem = built.problem
    t0 = time.perf_counter()
    model = copy.deepcopy(built.model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-5)
    schedule = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=(10 / 1e-5) ** (1 / (steps - 1)))
    for _ in range(steps):
        opt.zero_grad()
        loss = problem.loss_fn(model(problem.X), problem.y)
        loss.backward()
        opt.step()
        schedule.step()
        loss.item()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts")
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--only", choices=("e",), help="only section (e)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    quick = args.quick
    repeats = 1 if quick else 2
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if args.only == "e":
        section_e(quick, repeats)
        return
    quad = get_surface("rotated_quadratic")

    side, steps = (32, 50) if quick else (64, 100)
    lrs, momenta = log_spaced(1e-3, 1.0, side), linear_spaced(0.0, 0.99, side)
    print(f"\n(a) trainability map {side} x {side} (SGD momentum x lr), {steps} steps, "
          "ill-conditioned quadratic, end to end")
    t = median_of(repeats, {
        "core": lambda: _timed(lambda: trainability_map(quad, "SGD", "momentum", momenta, lrs,
                                                        steps, start=START)),
        "tab": lambda: map_tab_seconds(side, steps),
        "plain": lambda: plain_map(quad, lrs, momenta, steps)})
    print(f"  core.many.trainability_map {t['core']:.2f} s; the Trainability tab (Compute to "
          f"picture) {t['tab']:.2f} s; the plain loop over the cells {t['plain']:.2f} s")
    print(f"  ratios: core / plain {t['core'] / t['plain']:.2f}, tab / plain "
          f"{t['tab'] / t['plain']:.2f}")
    groups = [({"lr": float(lr), "momentum": float(m)}, [START]) for m in momenta for lr in lrs]
    t = median_of(repeats, {
        "one": lambda: build_seconds(quad, groups, len(groups)),
        "chunks": lambda: build_seconds(quad, groups, batch_module.GROUPS_PER_OPTIMIZER)})
    print(f"  building the batch: one optimizer of {len(groups)} groups {t['one']:.2f} s, "
          f"optimizers of {batch_module.GROUPS_PER_OPTIMIZER} groups {t['chunks']:.2f} s "
          f"(/ one {t['chunks'] / t['one']:.3f})")

    few = 10 if quick else 20
    print(f"\n(b) one step of that map's batch ({len(groups)} param groups)")
    t = median_of(repeats + 1, {
        "default": lambda: groups_step(quad, groups, few),
        "foreach": lambda: groups_step(quad, groups, few, foreach=True),
        "float32": lambda: groups_step(quad, groups, few, dtype=torch.float32)})
    print(f"  default (single-tensor, float64) {t['default'] * 1e3:.1f} ms; foreach=True "
          f"{t['foreach'] * 1e3:.1f} ms (/ default {t['foreach'] / t['default']:.2f}); float32 "
          f"{t['float32'] * 1e3:.1f} ms (/ float64 {t['float32'] / t['default']:.2f})")

    print("\n(c) torch.compile of the surface's loss (Rosenbrock)")
    if args.compile:
        compiled_loss(get_surface("rosenbrock"), repeats + 1)
    else:
        print("  skipped (--compile: it compiles for about a minute first)")

    built = ModelSession().build()
    count, steps = (8, 50) if quick else (20, 100)
    sweep_lrs = log_spaced(1e-3, 10.0, count)
    print(f"\n(d) model mode: small-mlp on moons ({built.problem.n} rows, full batch), "
          f"{count} lrs x {steps} SGD steps; the lr range test, {steps} Adam steps")
    t = median_of(repeats, {
        "sweep": lambda: _timed(lambda: lr_sweep(built, "SGD", sweep_lrs, steps)),
        "plain": lambda: plain_model_loop(built, sweep_lrs, steps),
        "range": lambda: _timed(lambda: range_test(built, "Adam", 1e-5, 10.0, steps,
                                                   stop_factor=1e9)),
        "plain_range": lambda: plain_range_test(built, steps)})
    print(f"  lr sweep {t['sweep']:.2f} s, the plain loop {t['plain']:.2f} s: ratio "
          f"{t['sweep'] / t['plain']:.2f} (a Run records and judges every step)")
    print(f"  range test {t['range'] * 1e3:.0f} ms, the plain loop {t['plain_range'] * 1e3:.0f} "
          f"ms: ratio {t['range'] / t['plain_range']:.2f}")
    section_e(quick, repeats)


if __name__ == "__main__":
    main()
