"""The surface view's cost per tick: six runs with 20 000 points each, every tick adding a step.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_surface_view.py [--points 20000]

Prints, per tick (median and worst of many): the live SurfaceView's update from the runs
(`update_runs`: setData on what changed) plus a repaint of the view, against a plain pyqtgraph
baseline in the same process (one PlotWidget, six PlotCurveItems, setData on the same arrays and
the same repaint). The ratio is the view's overhead over the least pyqtgraph can do; a frame is
16.7 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication  # noqa: E402

import pyqtgraph as pg  # noqa: E402

SIX_RUNS = (("SGD", {"lr": 1e-3}), ("SGD", {"lr": 1e-3, "momentum": 0.9}),
            ("RMSprop", {"lr": 1e-2}), ("Adam", {"lr": 5e-2}), ("Adagrad", {"lr": 0.5}),
            ("NAdam", {"lr": 0.02}))


def timed(work, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        work()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--ticks", type=int, default=60)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])

    from core.session import Session
    from gui.controller import Controller
    from gui.surface_view import SurfaceView

    session = Session.default()
    for run in list(session.runs):
        session.remove_run(run)
    for name, hps in SIX_RUNS:
        session.add_run(name, hps)
    t = time.perf_counter()
    session.step(args.points)
    print(f"stepped 6 runs x {args.points} points in {time.perf_counter() - t:.1f} s")
    controller = Controller(session)
    view = SurfaceView(controller)
    view.resize(1000, 750)
    view.show()
    app.processEvents()
    view.grab()  # first paint: caches

    def view_tick() -> None:
        for run in session.runs:
            run.step(1)
        view.picture.update_runs()
        view.viewport().repaint()

    baseline = pg.PlotWidget()
    baseline.resize(1000, 750)
    baseline.show()
    curves = [baseline.plot(pen=pg.mkPen(run.color, width=1)) for run in session.runs]
    app.processEvents()

    def baseline_tick() -> None:
        for run in session.runs:
            run.step(1)
        for run, curve in zip(session.runs, curves):
            curve.setData(run.trajectory.x, run.trajectory.y)
        baseline.viewport().repaint()

    step_only = timed(lambda: [run.step(1) for run in session.runs], args.ticks)
    ours = timed(view_tick, args.ticks)
    plain = timed(baseline_tick, args.ticks)
    s = statistics.median(step_only)
    for name, values in (("SurfaceView", ours), ("plain pyqtgraph", plain)):
        print(f"{name:16s} median {1e3 * (statistics.median(values) - s):6.2f} ms   "
              f"worst {1e3 * (max(values) - s):6.2f} ms   (stepping the 6 runs excluded)")
    ratio = (statistics.median(ours) - s) / max(1e-9, statistics.median(plain) - s)
    print(f"ratio SurfaceView / plain pyqtgraph (median): {ratio:.2f}")
    controller.shutdown()
    view.close()
    baseline.close()


if __name__ == "__main__":
    main()
