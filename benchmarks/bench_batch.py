"""Batched runs (core/batch.py, core/many.py): what batching buys, in the same process.

    .venv/bin/python benchmarks/bench_batch.py            # everything (about a minute)
    .venv/bin/python benchmarks/bench_batch.py --quick    # smaller counts

(a) One start-step inside a 256 x 256 BatchRun (optimizer.step, forward, backward and the
    per-element status) against one step of a single core.run.Run, for SGD, Adam and RMSprop on
    Himmelblau; and against the plain batched torch loop (zero_grad, forward, sum, backward,
    step; no status), to show what the status bookkeeping costs. Aim: ~1000x cheaper than Run.
(b) A 256 x 256 basin map of 500 Adam steps on Himmelblau, end to end: core.many.basins, and the
    Basins tab from Compute to the picture on screen (offscreen Qt), against the plain batched
    torch loop of the same steps.
(c) A 64 x 64 trainability map (SGD momentum x lr, one param group per cell) on the
    ill-conditioned quadratic, and its cost per cell-step against a single Run's step.
(d) foreach=True against torch's default (single-tensor on CPU, what Run uses), for (a) and (c);
    float32 against float64 for (a). The default stays float64 without foreach: the results
    are bit for bit those of single Runs (tests/core/test_batch.py).
Repeats are interleaved and the median is reported; the machine is shared, so read the ratios.
torch runs on one thread unless --threads says otherwise: on this shared 2-core machine two
OpenMP threads stalled for tens of milliseconds whenever another process held a core (a 65536-
element pow took 8-13 ms instead of 0.01 ms).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import core.batch as batch_module  # noqa: E402
from core.batch import BatchRun  # noqa: E402
from core.many import basins, linear_spaced, log_spaced, trainability_map  # noqa: E402
from core.run import Run  # noqa: E402
from core.surfaces import get_surface  # noqa: E402

SETTINGS = {"SGD": {"lr": 0.01}, "Adam": {"lr": 0.05}, "RMSprop": {"lr": 0.01}}


def grid_starts(surface, n: int) -> np.ndarray:
    xs = np.linspace(*surface.x_range, n)
    ys = np.linspace(*surface.y_range, n)
    return np.column_stack([np.tile(xs, n), np.repeat(ys, n)])


def single_run_step(surface, optimizer: str, steps: int) -> float:
    """Seconds per step of one Run (after a warm-up)."""
    run = Run(surface, optimizer, SETTINGS[optimizer], start=(0.5, -0.5))
    run.step(20)
    t0 = time.perf_counter()
    run.step(steps)
    return (time.perf_counter() - t0) / steps


def batch_step(surface, optimizer: str, starts: np.ndarray, steps: int, **kwargs) -> float:
    """Seconds per step of a BatchRun over `starts`."""
    batch = BatchRun(surface, optimizer, [(SETTINGS[optimizer], starts)], **kwargs)
    batch.step(3)
    t0 = time.perf_counter()
    batch.step(steps)
    return (time.perf_counter() - t0) / steps


def plain_batch_step(surface, optimizer: str, starts: np.ndarray, steps: int) -> float:
    """Seconds per step of the plain batched torch loop: no status, no masking."""
    x = torch.tensor(starts[:, 0], dtype=torch.float64, requires_grad=True)
    y = torch.tensor(starts[:, 1], dtype=torch.float64, requires_grad=True)
    opt = getattr(torch.optim, optimizer)([x, y], **SETTINGS[optimizer])

    def one() -> None:
        opt.zero_grad()
        surface(x, y).sum().backward()
        opt.step()

    for _ in range(3):
        one()
    t0 = time.perf_counter()
    for _ in range(steps):
        one()
    return (time.perf_counter() - t0) / steps


def median_of(repeats: int, fns: dict) -> dict:
    samples: dict = {k: [] for k in fns}
    for _ in range(repeats):
        for key, fn in fns.items():  # interleaved: load from other processes hits all alike
            samples[key].append(fn())
    return {k: statistics.median(v) for k, v in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    quick = args.quick
    torch.set_num_threads(args.threads)
    repeats = 2 if quick else 3
    surface = get_surface("himmelblau")
    starts = grid_starts(surface, 256)
    n = len(starts)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}")

    print(f"\n(a) one start-step in a 256 x 256 batch ({n} starts) vs one Run step, Himmelblau")
    batch_steps = 10 if quick else 25
    for optimizer in SETTINGS:
        t = median_of(repeats, {
            "run": lambda o=optimizer: single_run_step(surface, o, 500 if quick else 2000),
            "batch": lambda o=optimizer: batch_step(surface, o, starts, batch_steps),
            "plain": lambda o=optimizer: plain_batch_step(surface, o, starts, batch_steps),
            "foreach": lambda o=optimizer: batch_step(surface, o, starts, batch_steps,
                                                      foreach=True),
            "float32": lambda o=optimizer: batch_step(surface, o, starts, batch_steps,
                                                      dtype=torch.float32)})
        per_start = t["batch"] / n
        print(f"  {optimizer:<8} Run step {t['run'] * 1e6:7.1f} us; batch step "
              f"{t['batch'] * 1e3:6.2f} ms = {per_start * 1e9:6.1f} ns per start-step: "
              f"{t['run'] / per_start:6.0f}x cheaper than a Run step")
        print(f"  {'':<8} plain batched torch loop {t['plain'] * 1e3:6.2f} ms (ours / plain "
              f"{t['batch'] / t['plain']:.2f}); foreach=True {t['foreach'] * 1e3:6.2f} ms "
              f"(/ default {t['foreach'] / t['batch']:.2f}); float32 {t['float32'] * 1e3:6.2f}"
              f" ms (/ float64 {t['float32'] / t['batch']:.2f})")

    grid_n, steps = (128, 200) if quick else (256, 500)
    print(f"\n(b) basin map {grid_n} x {grid_n}, {steps} Adam(lr=0.05) steps, Himmelblau, "
          "end to end")
    basin_starts = grid_starts(surface, grid_n)
    t = median_of(1 if quick else 2, {
        "basins": lambda: _timed(lambda: basins(surface, "Adam(lr=0.05)", grid_n, steps)),
        "plain": lambda: plain_batch_step(surface, "Adam", basin_starts, steps) * steps,
        "tab": lambda: basins_tab_seconds(surface, grid_n, steps)})
    result = basins(surface, "Adam(lr=0.05)", grid_n, steps)
    counts = np.bincount(result.minimum + 1, minlength=len(result.minima) + 1)
    print(f"  core.many.basins {t['basins']:.2f} s; the plain batched torch loop of the same "
          f"steps (no status, no minima) {t['plain']:.2f} s: ratio {t['basins'] / t['plain']:.2f}")
    print(f"  the Basins tab, Compute to picture (Job, colours, drawing) {t['tab']:.2f} s: "
          f"{t['tab'] / t['plain']:.2f}x the plain loop, {t['tab'] / t['basins']:.2f}x "
          "core.many.basins")
    print(f"  cells per minimum {counts[1:].tolist()}, none {counts[0]}")

    side, steps = (32, 50) if quick else (64, 100)
    quad = get_surface("rotated_quadratic")
    lrs, momenta = log_spaced(1e-3, 1.0, side), linear_spaced(0.0, 0.99, side)
    print(f"\n(c) trainability map {side} x {side} (SGD momentum x lr), {steps} steps, "
          "ill-conditioned quadratic, one param group per cell")
    t0 = time.perf_counter()
    tmap = trainability_map(quad, "SGD", "momentum", momenta, lrs, steps, start=(-2.5, 2.0))
    elapsed = time.perf_counter() - t0
    run = Run(quad, "SGD", {"lr": 0.01, "momentum": 0.9}, start=(-2.5, 2.0))
    run.step(20)
    t1 = time.perf_counter()
    run.step(1000)
    run_step = (time.perf_counter() - t1) / 1000
    per_cell_step = elapsed / (side * side * steps)
    names = tmap.cells.status_names()
    print(f"  {elapsed:.2f} s = {per_cell_step * 1e6:.2f} us per cell-step; a Run step "
          f"{run_step * 1e6:.1f} us: {run_step / per_cell_step:.1f}x cheaper; "
          f"diverged {names.count('diverged')}, converged {names.count('converged')}")
    groups = [({"lr": float(lr), "momentum": float(m)}, [(-2.5, 2.0)])
              for m in momenta for lr in lrs]
    few = 10 if quick else 20
    t = median_of(repeats, {
        "default": lambda: _groups_step(quad, groups, few, None),
        "unpacked": lambda: _groups_step(quad, groups, few, None, pack=False),
        "foreach": lambda: _groups_step(quad, groups, few, True)})
    print(f"  per step with {len(groups)} groups: default (x, y packed in one leaf per group) "
          f"{t['default'] * 1e3:.1f} ms; two leaves per group {t['unpacked'] * 1e3:.1f} ms "
          f"(/ packed {t['unpacked'] / t['default']:.2f}); foreach=True "
          f"{t['foreach'] * 1e3:.1f} ms (/ default {t['foreach'] / t['default']:.2f})")


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def basins_tab_seconds(surface, grid_n: int, steps: int) -> float:
    """The Basins tab (gui/many/basins_view.py) on one Adam run, offscreen: from Compute to the
    map on screen (the Job, the colours, the panel), each time with an empty cache."""
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from core.session import Session
    from gui.controller import Controller
    from gui.many.basins_view import BasinsView

    app = QApplication.instance() or QApplication([])
    session = Session(surface)
    session.add_run("Adam", {"lr": 0.05})
    view = BasinsView(Controller(session))
    view.resize(900, 600)
    view.show()
    view.grid_spin.setValue(grid_n)
    view.steps_spin.setValue(steps)
    shown: list = []
    view.sigComputed.connect(shown.append)
    t0 = time.perf_counter()
    view.compute()
    while not shown:
        app.processEvents()
        time.sleep(0.001)
    app.processEvents()  # the paint of the new picture
    elapsed = time.perf_counter() - t0
    view.close()
    return elapsed


def _groups_step(surface, groups: list, steps: int, foreach: bool | None,
                 pack: bool = True) -> float:
    saved = batch_module.PACK_MAX_GROUP
    batch_module.PACK_MAX_GROUP = saved if pack else 0
    try:
        batch = BatchRun(surface, "SGD", groups, foreach=foreach)
    finally:
        batch_module.PACK_MAX_GROUP = saved
    batch.step(2)
    t0 = time.perf_counter()
    batch.step(steps)
    return (time.perf_counter() - t0) / steps


if __name__ == "__main__":
    main()
