"""GUI figures: launch time, and six runs animating as fast as they can.

Prints the time from process start to a shown main window, the longest gap between two timer
ticks while six runs step at maximum speed (the GUI thread should never stall longer than a
frame, ~16 ms), and the steps per second drawn, against a plain torch loop doing the same steps
in the same process.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_gui.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

T0 = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    app = QApplication.instance() or QApplication([])
    from gui.controller import MAX_SPEED
    from gui.main_window import MainWindow

    imported = time.perf_counter() - T0

    settings = QSettings(str(Path(tempfile.mkdtemp()) / "bench.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, restore=False)
    window.show()
    while not window.isVisible():
        app.processEvents()
    app.processEvents()
    launch = time.perf_counter() - T0
    print(f"launch to shown window: {launch * 1000:.0f} ms (imports of torch, Qt and pyqtgraph: "
          f"{imported * 1000:.0f} ms; building and showing the window: "
          f"{(launch - imported) * 1000:.0f} ms)")

    c = window.controller
    for name, hps in (("Adagrad", {"lr": 0.5}), ("NAdam", {"lr": 0.02})):
        c.add_run(name, hps)
    runs = c.session.runs
    print(f"runs animating: {len(runs)} ({', '.join(r.title for r in runs)})")
    c.set_speed(MAX_SPEED)
    c.max_tick_gap = 0.0
    gaps: list[float] = []
    last = [time.perf_counter()]

    def on_stepped() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    c.sigStepped.connect(on_stepped)
    steps_before = sum(r.steps for r in runs)
    c.play()
    start = time.perf_counter()
    last[0] = start
    while time.perf_counter() - start < args.seconds:
        app.processEvents()
    c.pause()
    elapsed = time.perf_counter() - start
    steps = sum(r.steps for r in runs) - steps_before
    gaps_ms = sorted(g * 1000 for g in gaps[1:])
    print(f"ticks: {len(gaps)} in {elapsed:.1f} s ({len(gaps) / elapsed:.0f} per second)")
    print(f"longest gap between two ticks: {max(gaps_ms):.1f} ms; 99th percentile "
          f"{gaps_ms[int(0.99 * (len(gaps_ms) - 1))]:.1f} ms; median "
          f"{gaps_ms[len(gaps_ms) // 2]:.1f} ms (a frame is ~16 ms)")
    print(f"steps drawn: {steps} ({steps / elapsed:.0f} steps/s over all runs, "
          f"{steps / elapsed / len(runs):.0f} per run)")

    # The same kind of work in a plain torch loop, for scale.
    import torch

    from core.surfaces import get_surface

    f = get_surface("rosenbrock")
    x = torch.tensor(-1.2, dtype=torch.float64, requires_grad=True)
    y = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([x, y], lr=0.01)
    n, t = 0, time.perf_counter()
    while time.perf_counter() - t < 2.0:
        opt.zero_grad()
        f(x, y).backward()
        opt.step()
        n += 1
    plain = n / (time.perf_counter() - t)
    print(f"plain torch loop (Adam on Rosenbrock, no GUI): {plain:.0f} steps/s; the app drew "
          f"{steps / elapsed / plain:.2f} of that while keeping the window responsive")
    window.close()


if __name__ == "__main__":
    main()
