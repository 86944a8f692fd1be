"""The model workspace's loss landscape: the grid, and what the GUI thread pays for it.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_landscape.py [--quick]

(a) A 101 x 101 slice of the small MLP on 200 points, as the Landscape tab computes it
    (core.landscape.landscape_around: random and PCA directions, float64, vmap over
    functional_call in chunks, under no_grad), against the plain loop a PyTorch user would
    write for the same grid: one `functional_call(model, params, (X,))` and loss per point
    under no_grad (timed on a sample of points, scaled to the grid), in the same process.
    The issue's aim: well under a second.
(b) The GUI thread: drawing a computed 101 x 101 grid (heatmap, log colours, contours), and the
    live path update after a tick (projecting 2 runs' paths of 500 snapshots onto the plane and
    setData), against the 16 ms frame. The grid itself runs in a gui/worker.py Job.
(c) Training throughput of 6 live runs (small MLP) with the Landscape tab on screen against the
    same without it (the cost of sampling and projecting the paths while playing).
Medians of interleaved repeats (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.func import functional_call  # noqa: E402

from core.landscape import landscape_around, random_directions  # noqa: E402
from core.problems.data import make_dataset, make_loss, shape_targets  # noqa: E402
from core.problems.model import PRESETS, ParameterLayout, build_model  # noqa: E402

FRAME_MS = 16.0


def small_mlp():
    data = make_dataset("moons", n=200, seed=0)
    model = build_model(PRESETS["small-mlp"].text, 2, seed=0)
    loss_fn = make_loss("BCEWithLogitsLoss", data.task)
    return model, loss_fn, data.X, shape_targets(data.y, "BCEWithLogitsLoss")


def plain_paths(model, loss_fn, X, y, steps: int) -> list[np.ndarray]:
    """Two plain training loops (SGD, Adam) from the model's weights; flat parameters per step."""
    import copy

    paths = []
    for make in (lambda ps: torch.optim.SGD(ps, lr=0.1), lambda ps: torch.optim.Adam(ps, lr=0.01)):
        other = copy.deepcopy(model)
        optimizer = make(other.parameters())
        snaps = [torch.nn.utils.parameters_to_vector(other.parameters()).detach().clone()]
        for _ in range(steps):
            optimizer.zero_grad()
            loss_fn(other(X), y).backward()
            optimizer.step()
            snaps.append(torch.nn.utils.parameters_to_vector(other.parameters()).detach().clone())
        paths.append(torch.stack(snaps).numpy())
    return paths


def plain_pointwise_seconds(model, loss_fn, X, y, grid: int, sample: int = 400) -> float:
    """The plain loop: one functional_call per grid point, under no_grad, scaled to grid x grid."""
    d = random_directions(model, seed=0)
    layout = ParameterLayout.of(model)
    model.eval()
    start = time.perf_counter()
    with torch.no_grad():
        for k in range(sample):
            a, b = (k % grid) / grid - 0.5, (k // grid) / grid - 0.5
            params = layout.unflatten(d.centre + a * d.d1 + b * d.d2)
            loss_fn(functional_call(model, params, (X,)), y)
    model.train()
    return (time.perf_counter() - start) / sample * grid * grid


def bench_grid(repeats: int, grid: int = 101) -> None:
    model, loss_fn, X, y = small_mlp()
    paths = plain_paths(model, loss_fn, X, y, 200)
    times: dict[str, list[float]] = {"random": [], "pca": [], "random float32": [], "plain": []}
    for _ in range(repeats):
        for key in ("random", "pca", "random float32"):
            kind, _, precision = key.partition(" ")
            start = time.perf_counter()
            landscape_around(model, loss_fn, X, y, kind, paths=paths, grid=grid,
                             cover_paths=True,
                             dtype=torch.float32 if precision else torch.float64)
            times[key].append(time.perf_counter() - start)
        times["plain"].append(plain_pointwise_seconds(model, loss_fn, X, y, grid))
    plain = statistics.median(times["plain"])
    for kind in ("random", "pca", "random float32"):
        t = statistics.median(times[kind])
        precision = "" if kind.endswith("float32") else " float64"
        print(f"(a) {kind}{precision} slice {grid}x{grid}, small MLP, 200 points: "
              f"{t * 1e3:.0f} ms "
              f"(median of {repeats}); the plain per-point functional_call loop "
              f"~{plain * 1e3:.0f} ms; ratio plain / landscape = {plain / t:.1f}x")


def bench_gui(repeats: int, grid: int = 101) -> None:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    import pyqtgraph as pg

    from gui.model.landscape_view import DrawnPath, LandscapePicture

    model, loss_fn, X, y = small_mlp()
    paths = plain_paths(model, loss_fn, X, y, 500)
    landscape = landscape_around(model, loss_fn, X, y, "pca", paths=paths, grid=grid,
                                 cover_paths=True)
    widget = pg.GraphicsLayoutWidget()
    widget.resize(800, 600)
    widget.show()
    picture = LandscapePicture(widget.ci)
    app.processEvents()
    draws, updates = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        picture.show_landscape(landscape)
        app.processEvents()  # the repaint
        draws.append(time.perf_counter() - start)
        start = time.perf_counter()
        projected = landscape.project(paths)
        landscape.plane_text(paths)
        picture.set_paths([DrawnPath(f"run {k}", c, px, py) for k, (c, (px, py)) in
                           enumerate(zip(("#1f77b4", "#ff7f0e"), projected))])
        app.processEvents()
        updates.append(time.perf_counter() - start)
    draw, update = statistics.median(draws), statistics.median(updates)
    print(f"(b) GUI thread: drawing the {grid}x{grid} grid {draw * 1e3:.1f} ms "
          f"({draw * 1e3 / FRAME_MS:.2f} frames); a live path update (2 runs x 501 snapshots, "
          f"project + plane text + setData + repaint) {update * 1e3:.1f} ms "
          f"({update * 1e3 / FRAME_MS:.2f} frames)")
    widget.close()


def bench_training_with_the_tab(seconds: float) -> None:
    """Steps per second of 6 runs training the small MLP live, with the Landscape tab on screen
    (a PCA picture, paths projected live) and without it, interleaved."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from gui.model.controller import ModelController
    from gui.model.landscape_view import LandscapeView

    def steps_per_second(with_view: bool) -> float:
        controller = ModelController()
        for name in ("SGD", "Adam", "RMSprop", "AdamW", "NAdam", "Adagrad"):
            controller.add_run(name)
        view = None
        if with_view:
            view = LandscapeView(controller)
            view.resize(700, 600)
            view.show()
            for _ in range(5):
                controller.step_once()
            view.kind_box.setCurrentIndex(view.kind_box.findData("pca"))
            view.compute()
            view.wait_for_job(60.0)
        start_steps = sum(r.steps for r in controller.runs)
        controller.play()
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            app.processEvents()
        controller.pause()
        rate = (sum(r.steps for r in controller.runs) - start_steps) / (time.perf_counter()
                                                                         - start)
        if view is not None:
            view.shutdown()
            view.close()
            view.deleteLater()  # (deleted by Qt, children and event filters with it)
            app.processEvents()
        controller.shutdown()
        return rate

    rates: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(2):
        for with_view in (False, True):
            rates[with_view].append(steps_per_second(with_view))
    without, with_tab = statistics.median(rates[False]), statistics.median(rates[True])
    print(f"(c) 6 runs training the small MLP live: {with_tab:.0f} steps/s with the Landscape "
          f"tab on screen (PCA, paths projected at 10 Hz), {without:.0f} without; ratio "
          f"{with_tab / without:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    bench_grid(repeats)
    bench_gui(repeats)
    bench_training_with_the_tab(2.0 if args.quick else 4.0)


if __name__ == "__main__":
    main()
